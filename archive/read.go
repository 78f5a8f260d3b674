package archive

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// HighWaterMark returns the topic's mark: the latest replay ID the server confirmed, committed with the events
// before it. nil, nil when the topic has no mark.
func (a *Archive) HighWaterMark(topic string) ([]byte, error) {
	var hwm []byte
	err := a.view(func(tx *bolt.Tx) error {
		if t := topicBucket(tx, topic); t != nil {
			if s := t.Bucket(bucketState); s != nil {
				hwm = clone(s.Get(stateHWM))
			}
		}
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("read mark of %s in %s: %w", topic, a.path, err)
	}
	return hwm, nil
}

// HasSchema reports whether the schema with that ID is stored.
func (a *Archive) HasSchema(id string) (bool, error) {
	var ok bool
	err := a.view(func(tx *bolt.Tx) error {
		ok = id != "" && tx.Bucket(bucketSchemas).Get([]byte(id)) != nil
		return nil
	}, nil)
	if err != nil {
		return false, fmt.Errorf("look up schema %s in %s: %w", id, a.path, err)
	}
	return ok, nil
}

// Schema returns the schema JSON stored for id, exactly as GetSchema returned it; ErrSchemaNotFound (wrapped,
// naming the id) if it is not stored.
func (a *Archive) Schema(id string) (string, error) {
	var js string
	found := false
	err := a.view(func(tx *bolt.Tx) error {
		if id == "" {
			return nil
		}
		if v := tx.Bucket(bucketSchemas).Get([]byte(id)); v != nil {
			js, found = string(v), true
		}
		return nil
	}, nil)
	if err != nil {
		return "", fmt.Errorf("read schema %s from %s: %w", id, a.path, err)
	}
	if !found {
		return "", fmt.Errorf("schema %q in %s: %w", id, a.path, ErrSchemaNotFound)
	}
	return js, nil
}

// SchemaIDs returns the IDs of every stored schema, sorted.
func (a *Archive) SchemaIDs() ([]string, error) {
	var ids []string
	err := a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSchemas).ForEach(func(k, _ []byte) error {
			ids = append(ids, string(k))
			return nil
		})
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("list schemas in %s: %w", a.path, err)
	}
	return ids, nil
}

// Topics returns the names of the archive's topics (those with events or a mark), sorted.
func (a *Archive) Topics() ([]string, error) {
	var names []string
	err := a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTopics).ForEachBucket(func(k []byte) error {
			names = append(names, string(k))
			return nil
		})
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("list topics in %s: %w", a.path, err)
	}
	slices.Sort(names) // bbolt's order is byte order already; sorting states the contract
	return names, nil
}

func topicBucket(tx *bolt.Tx, topic string) *bolt.Bucket {
	if topic == "" {
		return nil
	}
	return tx.Bucket(bucketTopics).Bucket([]byte(topic))
}

// Gap is a durable record of a stretch the archive could not capture (e.g. a stored position the server rejected).
type Gap struct {
	Seq                      uint64 // assigned by AddGap, 1, 2, ...
	Topic                    string
	Time                     time.Time
	Kind                     string // e.g. "invalid-replay"
	FromReplayID, ToReplayID []byte
	Reason                   string
}

const gapV1 = 1

// AddGap stores g durably in its own transaction and assigns its Seq.
func (a *Archive) AddGap(g Gap) error {
	if err := a.writable("add gap to"); err != nil {
		return err
	}
	if g.Time.IsZero() {
		g.Time = time.Now()
	}
	err := a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketGaps)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		b.FillPercent = 1.0
		rec := []byte{gapV1}
		rec = appendBytes(rec, g.Topic)
		rec = binary.BigEndian.AppendUint64(rec, uint64(g.Time.UnixNano()))
		rec = appendBytes(rec, g.Kind)
		rec = appendBytes(rec, g.FromReplayID)
		rec = appendBytes(rec, g.ToReplayID)
		rec = appendBytes(rec, g.Reason)
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), rec)
	})
	if err != nil {
		return fmt.Errorf("add gap for %s to %s: %w", g.Topic, a.path, err)
	}
	return nil
}

// Gaps returns every gap record in the order they were added.
func (a *Archive) Gaps() ([]Gap, error) {
	var gaps []Gap
	err := a.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGaps).ForEach(func(k, v []byte) error {
			g, err := decodeGap(k, v)
			if err != nil {
				return fmt.Errorf("gap record %x: %w", k, err)
			}
			gaps = append(gaps, g)
			return nil
		})
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("read gaps from %s: %w", a.path, err)
	}
	return gaps, nil
}

func decodeGap(k, v []byte) (Gap, error) {
	var g Gap
	if len(k) != 8 {
		return g, fmt.Errorf("key of %d bytes", len(k))
	}
	if len(v) == 0 || v[0] != gapV1 {
		return g, fmt.Errorf("unknown gap record version")
	}
	d := decoder{b: v, off: 1}
	g.Seq = binary.BigEndian.Uint64(k)
	g.Topic = string(d.bytes("topic"))
	g.Time = nanoTime(int64(d.fixed64("time")))
	g.Kind = string(d.bytes("kind"))
	g.FromReplayID = clone(d.bytes("from replay id"))
	g.ToReplayID = clone(d.bytes("to replay id"))
	g.Reason = string(d.bytes("reason"))
	if d.err == nil && d.off != len(v) {
		return g, fmt.Errorf("trailing bytes")
	}
	return g, d.err
}

// BindOrg binds the archive to an org on first call. A later call with the same org (15- or 18-character form)
// updates the instance URL (orgs move between instances); another org → ErrOrgMismatch, and nothing is written.
func (a *Archive) BindOrg(orgID, instanceURL string) error {
	if err := a.writable("bind org of"); err != nil {
		return err
	}
	if orgID == "" {
		return fmt.Errorf("bind org of %s: empty org ID", a.path)
	}
	var bound string
	err := a.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if cur := meta.Get(metaOrgID); cur != nil {
			if !sameOrg(string(cur), orgID) {
				bound = string(cur)
				return ErrOrgMismatch
			}
			if bytes.Equal(meta.Get(metaInstanceURL), []byte(instanceURL)) {
				return nil
			}
		} else if err := meta.Put(metaOrgID, []byte(orgID)); err != nil {
			return err
		}
		return meta.Put(metaInstanceURL, []byte(instanceURL))
	})
	switch {
	case bound != "":
		return fmt.Errorf("bind %s to org %s: %w: it holds org %s's events; use another archive file",
			a.path, orgID, ErrOrgMismatch, bound)
	case err != nil:
		return fmt.Errorf("bind %s to org %s: %w", a.path, orgID, err)
	}
	return nil
}

// sameOrg compares org IDs, treating the 15-character (case-sensitive) and 18-character forms as equal.
func sameOrg(x, y string) bool {
	if len(x) >= 15 && len(y) >= 15 && (len(x) == 15 || len(y) == 15) {
		return x[:15] == y[:15]
	}
	return x == y
}

// Org returns the bound org ID and instance URL ("" if unbound).
func (a *Archive) Org() (orgID, instanceURL string, err error) {
	err = a.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		orgID, instanceURL = string(meta.Get(metaOrgID)), string(meta.Get(metaInstanceURL))
		return nil
	}, nil)
	if err != nil {
		return "", "", fmt.Errorf("read org of %s: %w", a.path, err)
	}
	return orgID, instanceURL, nil
}
