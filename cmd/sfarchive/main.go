// Command sfarchive keeps a durable, queryable history of Salesforce
// Pub/Sub API events (platform events and Change Data Capture) in one bbolt
// file.
//
//	sfarchive demo                      # emulator → subscribe → query, in one go
//	sfarchive subscribe --archive events.db --topic /data/AccountChangeEvent ...
//	sfarchive query --archive events.db --topic '/data/*ChangeEvent' --since 24h
//
// Run `sfarchive help` or `sfarchive COMMAND --help` for every flag.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// A closed output pipe (`sfarchive query | head`) must end the query
	// quietly: with SIGPIPE ignored, writes fail with EPIPE, which the query
	// treats as the end of its output, instead of killing the process.
	signal.Ignore(syscall.SIGPIPE)
	os.Exit(run(context.Background(), os.Args, os.Stdin, os.Stdout, os.Stderr))
}
