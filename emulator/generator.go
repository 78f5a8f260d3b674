package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

// Generated is one generated event and what tests compare against.
type Generated struct {
	Topic    string
	Event    Event
	Truth    GroundTruth
	ReplayID []byte // set once published (PublishN, Run); nil from Next
}

// GroundTruth is what the generator meant an event to say.
type GroundTruth struct {
	ChangeType    string   // CDC: CREATE, UPDATE, ...; "" for platform events
	EntityName    string   // CDC entity, e.g. "Account"
	RecordIDs     []string // CDC record IDs
	ChangedFields []string // expanded names ("LastModifiedDate", "BillingAddress.Street"), Python/node order
	NulledFields  []string
	DiffFields    []string
	CommitNumber  int64
	// SchemaID is the schema the payload was written with (also when the event's SchemaID was blanked).
	SchemaID string
	// Values is the record as encoded (nested records as map[string]any, unset fields absent).
	Values map[string]any
}

// Generator makes seeded, realistic events for a Server's topics. It is safe for concurrent use.
type Generator struct {
	s  *Server
	mu sync.Mutex
	r  *rand.Rand

	mix      map[string]int // change type → weight
	versions map[string][]string
	records  map[string][]string // entity → live record IDs
	deleted  map[string][]string
	commit   int64
	clock    time.Time
	tx       txState
	added    int // fields added by EvolveSchema
}

type txState struct {
	key       string
	seq       int
	remaining int
	commitTS  int64
	commitNum int64
	user      string
	origin    string
}

// NewGenerator returns a generator for s seeded with seed: the same seed gives the same events.
func NewGenerator(seed int64, s *Server) *Generator {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5f0a_c1e5))
	return &Generator{
		s:        s,
		r:        r,
		mix:      map[string]int{"CREATE": 35, "UPDATE": 55, "DELETE": 10},
		versions: map[string][]string{},
		records:  map[string][]string{},
		deleted:  map[string][]string{},
		commit:   1698100138468892700 + r.Int64N(1_000_000_000_000),
		clock:    time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(time.Hour)))),
	}
}

// SetClock sets the event time of the next generated event (commitTimestamp, CreatedDate, LastModifiedDate);
// later events follow it at a few seconds apart. Without it a generator starts on 2026-11-30, so that a seed
// gives the same events whatever the day; a tool showing recent events sets a start shortly before now.
func (g *Generator) SetClock(start time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.clock = start
}

// SetMix sets the change types Next draws from for change-event topics and their weights, e.g.
// {"CREATE": 1, "UPDATE": 3, "GAP_OVERFLOW": 1}. Unknown types are rejected.
func (g *Generator) SetMix(weights map[string]int) error {
	for ct, w := range weights {
		if !slices.Contains(changeTypes, ct) || w < 0 {
			return fmt.Errorf("generator mix: bad change type or weight %s=%d", ct, w)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mix = maps(weights)
	return nil
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Next generates one event for topic without publishing it.
func (g *Generator) Next(topic string) (Generated, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if isCDC(topic) {
		return g.nextChangeLocked(topic, g.pickChangeType(), 0)
	}
	return g.nextPlatformLocked(topic, 0)
}

// Change generates one change event of the given type (CREATE, UPDATE, DELETE, UNDELETE, GAP_*, GAP_OVERFLOW)
// for a /data/ topic, without publishing it.
func (g *Generator) Change(topic, changeType string) (Generated, error) {
	if !slices.Contains(changeTypes, changeType) || changeType == "SNAPSHOT" {
		return Generated{}, fmt.Errorf("generate %s: unsupported change type %q", topic, changeType)
	}
	if !isCDC(topic) {
		return Generated{}, fmt.Errorf("generate %s: change events need a /data/ topic", topic)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nextChangeLocked(topic, changeType, 0)
}

// Large generates an event whose payload is close to size bytes (at most MaxEventSize): a change event with a
// long Description, or a platform event with a long text field.
func (g *Generator) Large(topic string, size int) (Generated, error) {
	if size > MaxEventSize {
		size = MaxEventSize
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if isCDC(topic) {
		return g.nextChangeLocked(topic, "UPDATE", size)
	}
	return g.nextPlatformLocked(topic, size)
}

// BlankSchema generates an event like Next but with an empty schema ID, as seen on /data/ChangeEvents.
// Truth.SchemaID still names the schema the payload was written with.
func (g *Generator) BlankSchema(topic string) (Generated, error) {
	gen, err := g.Next(topic)
	if err != nil {
		return gen, err
	}
	gen.Event.SchemaID = ""
	return gen, nil
}

// Publish publishes generated events and sets their ReplayID.
func (g *Generator) Publish(gens ...*Generated) error {
	byTopic := map[string][]int{}
	var order []string
	for i, gen := range gens {
		if _, ok := byTopic[gen.Topic]; !ok {
			order = append(order, gen.Topic)
		}
		byTopic[gen.Topic] = append(byTopic[gen.Topic], i)
	}
	for _, t := range order {
		idx := byTopic[t]
		evs := make([]Event, len(idx))
		for k, i := range idx {
			evs[k] = gens[i].Event
		}
		ids, err := g.s.Publish(t, evs...)
		if err != nil {
			return err
		}
		for k, i := range idx {
			gens[i].ReplayID = ids[k]
		}
	}
	return nil
}

// PublishN generates and publishes n events on topic.
func (g *Generator) PublishN(topic string, n int) ([]Generated, error) {
	out := make([]Generated, 0, n)
	for range n {
		gen, err := g.Next(topic)
		if err != nil {
			return out, err
		}
		if err := g.Publish(&gen); err != nil {
			return out, err
		}
		out = append(out, gen)
	}
	return out, nil
}

// Run publishes events on topics (round robin) until ctx ends: perSecond events per second, or, with
// perSecond <= 0, as fast as subscribers read (a batch whenever a subscriber waits at the tip with credit).
// onEvent, if not nil, sees every published event. Run returns nil when ctx ends.
func (g *Generator) Run(ctx context.Context, topics []string, perSecond float64, onEvent func(Generated)) error {
	if len(topics) == 0 {
		return fmt.Errorf("generator run: no topics")
	}
	publish := func(topic string, n int) error {
		for range n {
			gen, err := g.Next(topic)
			if err != nil {
				return err
			}
			if err := g.Publish(&gen); err != nil {
				return err
			}
			if onEvent != nil {
				onEvent(gen)
			}
		}
		return nil
	}
	if perSecond <= 0 {
		for {
			// Take the channel first: demand arriving while the topics are served closes it.
			ch := g.s.demandChan()
			for _, t := range topics {
				if err := publish(t, int(g.s.takeDemand(t))); err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-g.s.stopCh:
				return nil
			case <-ch:
			}
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-g.s.stopCh:
			return nil
		case <-tick.C:
			if err := publish(topics[i%len(topics)], 1); err != nil {
				return err
			}
		}
	}
}

// EvolveSchema adds a nullable custom field to topic's current schema, registers the result under its
// fingerprint as the topic's current schema and returns the new ID. Later events mix the old and new versions,
// as a backlog written across a schema change does.
func (g *Generator) EvolveSchema(topic string) (string, error) {
	info, err := g.s.Topic(topic)
	if err != nil {
		return "", err
	}
	js, err := g.s.Schema(info.SchemaID)
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		return "", fmt.Errorf("evolve %s: %w", topic, err)
	}
	fields, _ := doc["fields"].([]any)
	g.mu.Lock()
	g.added++
	name := fmt.Sprintf("Loyalty_Tier_%d__c", g.added)
	g.mu.Unlock()
	doc["fields"] = append(fields, map[string]any{"name": name, "type": []any{"null", "string"}, "default": nil})
	b, err := json.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("evolve %s: %w", topic, err)
	}
	id := SchemaFingerprint(string(b))
	if err := g.s.AddSchema(topic, id, string(b)); err != nil {
		return "", err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.versions[topic]) == 0 {
		g.versions[topic] = []string{info.SchemaID}
	}
	g.versions[topic] = append(g.versions[topic], id)
	return id, nil
}

// schemaFor picks the schema an event on topic is written with: the current one, or after EvolveSchema one of
// the versions (the newest twice as likely as each older one).
func (g *Generator) schemaForLocked(topic string) (string, *avro.RecordSchema, error) {
	id := ""
	if vs := g.versions[topic]; len(vs) > 1 {
		k := g.r.IntN(len(vs) + 1)
		if k >= len(vs) {
			k = len(vs) - 1
		}
		id = vs[k]
	} else {
		info, err := g.s.Topic(topic)
		if err != nil {
			return "", nil, err
		}
		id = info.SchemaID
	}
	g.s.mu.Lock()
	sc, ok := g.s.schemas[id]
	g.s.mu.Unlock()
	if !ok {
		return "", nil, fmt.Errorf("generate %s: schema %s: %w", topic, id, ErrUnknownSchema)
	}
	rec, ok := sc.parsed.(*avro.RecordSchema)
	if !ok {
		return "", nil, fmt.Errorf("generate %s: schema %s is not a record", topic, id)
	}
	return id, rec, nil
}

// nextPlatformLocked fills every field of a platform event schema with a plausible value.
func (g *Generator) nextPlatformLocked(topic string, size int) (Generated, error) {
	id, rec, err := g.schemaForLocked(topic)
	if err != nil {
		return Generated{}, err
	}
	g.clock = g.clock.Add(time.Duration(50+g.r.IntN(3000)) * time.Millisecond)
	vals := map[string]any{}
	var textField string
	for _, f := range rec.Fields() {
		name := f.Name()
		switch name {
		case "CreatedDate":
			vals[name] = g.clock.UnixMilli()
			continue
		case "CreatedById":
			vals[name] = g.userID()
			continue
		}
		v := g.valueFor(name, f.Type())
		if v != nil {
			vals[name] = v
		}
		if _, ok := v.(string); ok && textField == "" {
			textField = name
		}
	}
	if size > 0 && textField != "" {
		if err := g.pad(rec, vals, textField, size); err != nil {
			return Generated{}, err
		}
	}
	payload, err := Encode(rec, vals)
	if err != nil {
		return Generated{}, fmt.Errorf("generate %s: %w", topic, err)
	}
	return Generated{
		Topic: topic,
		Event: Event{ID: g.uuid(), SchemaID: id, Payload: payload},
		Truth: GroundTruth{SchemaID: id, Values: vals, ChangedFields: []string{}, NulledFields: []string{}, DiffFields: []string{}},
	}, nil
}

// pad grows the string field so the encoded record is about size bytes.
func (g *Generator) pad(rec *avro.RecordSchema, vals map[string]any, field string, size int) error {
	vals[field] = ""
	base, err := Encode(rec, vals)
	if err != nil {
		return err
	}
	// A string's length prefix takes up to 3 bytes at these sizes.
	n := size - len(base) - 3
	if n < 1 {
		n = 1
	}
	vals[field] = strings.Repeat(loremChunk, n/len(loremChunk)+1)[:n]
	return nil
}

const loremChunk = "Customer asked for a follow-up on the renewal terms and the delivery window. "

func (g *Generator) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
