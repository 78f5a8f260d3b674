//go:build !linux

package archive

import bolt "go.etcd.io/bbolt"

// adviseReadahead is Linux-only; elsewhere bbolt's default advice stays.
func adviseReadahead(*bolt.DB) error { return nil }

// trimResident is Linux-only; elsewhere the kernel manages the map alone.
func trimResident(*bolt.DB) error { return nil }

// trimInTx is Linux-only; elsewhere the kernel manages the map alone.
func trimInTx(*bolt.DB, int64) error { return nil }
