package subscriber

import (
	"encoding/binary"
	"strings"
	"time"
)

// eventTime reads an event's own time from the first bytes of its Avro
// payload, without its schema, for the progress line's lag only (the
// archive keeps payloads raw; query decodes them properly). Change events
// (/data/ topics) start with ChangeEventHeader, whose seventh field is
// commitTimestamp (PROTOCOL.md §6, byte-verified on a real event); platform
// events start with CreatedDate. Both are epoch milliseconds. ok is false
// when the bytes do not have that shape or the time is implausible.
func eventTime(topic string, payload []byte) (t time.Time, ok bool) {
	r := avroPeek{b: payload}
	if strings.HasPrefix(topic, "/data/") {
		r.skipBytes() // entityName
		r.skipStringArray()
		r.long()      // changeType (enum index)
		r.skipBytes() // changeOrigin
		r.skipBytes() // transactionKey
		r.long()      // sequenceNumber
	}
	ms := r.long()
	if r.bad {
		return time.Time{}, false
	}
	t = time.UnixMilli(ms)
	if t.Year() < 2000 || t.After(time.Now().Add(24*time.Hour)) {
		return time.Time{}, false
	}
	return t, true
}

// avroPeek reads Avro binary primitives; any malformed input sets bad.
type avroPeek struct {
	b   []byte
	bad bool
}

func (p *avroPeek) long() int64 {
	if p.bad {
		return 0
	}
	v, n := binary.Varint(p.b)
	if n <= 0 {
		p.bad = true
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *avroPeek) skipBytes() {
	n := p.long()
	if p.bad || n < 0 || n > int64(len(p.b)) {
		p.bad = true
		return
	}
	p.b = p.b[n:]
}

func (p *avroPeek) skipStringArray() {
	for !p.bad {
		count := p.long()
		if count == 0 {
			return
		}
		if count < 0 {
			count = -count
			p.long() // block size in bytes
		}
		if count > int64(len(p.b)) {
			p.bad = true
			return
		}
		for i := int64(0); i < count && !p.bad; i++ {
			p.skipBytes()
		}
	}
}
