package emulator

import (
	"fmt"
	"slices"
	"time"
)

// Event is one event as a publisher gives it.
type Event struct {
	ID       string // "" → a random UUID is assigned
	SchemaID string // kept verbatim, may be "" (blank schema ID events exist on /data/ChangeEvents)
	Payload  []byte // Avro binary datum
	Headers  map[string][]byte
}

// StoredEvent is an event in a topic's log.
type StoredEvent struct {
	ReplayID    []byte
	Event       Event
	PublishedAt time.Time
}

// TopicInfo describes a registered topic.
type TopicInfo struct {
	Name       string
	SchemaID   string   // current schema
	SchemaIDs  []string // every schema used on the topic, oldest first
	CanPublish bool
}

// addTopic registers a topic; callers must not hold s.mu.
func (s *Server) addTopic(name, schemaID, schemaJSON string, canPublish bool) error {
	if name == "" {
		return fmt.Errorf("add topic: empty name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[name]; ok {
		return fmt.Errorf("add topic %s: %w", name, ErrTopicExists)
	}
	if err := s.addSchemaLocked(schemaID, schemaJSON); err != nil {
		return fmt.Errorf("add topic %s: %w", name, err)
	}
	s.topics[name] = &topic{name: name, schemaID: schemaID, schemaIDs: []string{schemaID}, canPublish: canPublish, notify: make(chan struct{})}
	return nil
}

func (s *Server) addSchemaLocked(id, js string) error {
	if old, ok := s.schemas[id]; ok {
		if old.json != js {
			return fmt.Errorf("schema %s: %w", id, ErrSchemaIDInUse)
		}
		return nil
	}
	p, err := ParseSchema(js)
	if err != nil {
		return fmt.Errorf("schema %s: %w", id, err)
	}
	s.schemas[id] = &schema{id: id, json: js, parsed: p}
	return nil
}

// AddTopic registers a topic whose current schema is schemaJSON and returns the schema's ID (its fingerprint).
// Topics under /event/ accept the Publish RPC; /data/ (change data capture) topics do not.
func (s *Server) AddTopic(name string, schemaJSON string) (string, error) {
	id := SchemaFingerprint(schemaJSON)
	if err := s.addTopic(name, id, schemaJSON, !isCDC(name)); err != nil {
		return "", err
	}
	return id, nil
}

// AddSchema registers schemaJSON under an explicit schemaID (e.g. a real captured one; "" = its fingerprint) and
// makes it the topic's current schema. Events already published keep their schema IDs.
func (s *Server) AddSchema(topicName, schemaID, schemaJSON string) error {
	if schemaID == "" {
		schemaID = SchemaFingerprint(schemaJSON)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[topicName]
	if !ok {
		return fmt.Errorf("add schema to %s: %w", topicName, ErrUnknownTopic)
	}
	if err := s.addSchemaLocked(schemaID, schemaJSON); err != nil {
		return fmt.Errorf("add schema to %s: %w", topicName, err)
	}
	t.schemaID = schemaID
	if !slices.Contains(t.schemaIDs, schemaID) {
		t.schemaIDs = append(t.schemaIDs, schemaID)
	}
	return nil
}

// Topic returns a topic's description.
func (s *Server) Topic(name string) (TopicInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return TopicInfo{}, fmt.Errorf("topic %s: %w", name, ErrUnknownTopic)
	}
	return TopicInfo{Name: t.name, SchemaID: t.schemaID, SchemaIDs: slices.Clone(t.schemaIDs), CanPublish: t.canPublish}, nil
}

// Topics returns the registered topic names, sorted.
func (s *Server) Topics() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.topics))
	for n := range s.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Schema returns the JSON registered under id.
func (s *Server) Schema(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, ok := s.schemas[id]
	if !ok {
		return "", fmt.Errorf("schema %q: %w", id, ErrUnknownSchema)
	}
	return sc.json, nil
}

// Publish appends events to a topic's log — the path the Publish RPCs take, without their validation, so tests
// can publish to change-event topics, with blank or foreign schema IDs — and returns their 10-byte replay IDs.
// A payload over MaxEventSize fails the whole call with ErrEventTooLarge.
func (s *Server) Publish(topicName string, events ...Event) ([][]byte, error) {
	for i, e := range events {
		if len(e.Payload) > MaxEventSize {
			return nil, fmt.Errorf("publish to %s: event %d of %d bytes: %w", topicName, i, len(e.Payload), ErrEventTooLarge)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[topicName]
	if !ok {
		return nil, fmt.Errorf("publish to %s: %w", topicName, ErrUnknownTopic)
	}
	return s.appendLocked(t, events), nil
}

func (s *Server) appendLocked(t *topic, events []Event) [][]byte {
	now := s.now()
	ids := make([][]byte, 0, len(events))
	for _, e := range events {
		e = copyEvent(e)
		if e.ID == "" {
			e.ID = newUUID()
		}
		s.counter++
		t.log = append(t.log, stored{counter: s.counter, ev: e, at: now})
		ids = append(ids, EncodeReplayID(s.counter))
	}
	if len(events) > 0 {
		signal(&t.notify)
	}
	return ids
}

// Events returns a topic's retained events in replay order (ground truth for tests); nil for an unknown topic.
func (s *Server) Events(topicName string) []StoredEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[topicName]
	if !ok {
		return nil
	}
	s.expireLocked(t)
	out := make([]StoredEvent, len(t.log))
	for i, st := range t.log {
		out[i] = StoredEvent{ReplayID: EncodeReplayID(st.counter), Event: copyEvent(st.ev), PublishedAt: st.at}
	}
	return out
}

// Purge drops every event published before `before` on every topic, as retention does; their replay IDs become
// invalid for CUSTOM (replayid.corrupted).
func (s *Server) Purge(before time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.topics {
		s.purgeLocked(t, before)
	}
}

func (s *Server) purgeLocked(t *topic, before time.Time) {
	n := 0
	for n < len(t.log) && t.log[n].at.Before(before) {
		n++
	}
	if n == 0 {
		return
	}
	t.floor = t.log[n-1].counter
	t.log = slices.Delete(t.log, 0, n)
}

// expireLocked applies the retention window.
func (s *Server) expireLocked(t *topic) {
	s.purgeLocked(t, s.now().Add(-s.cfg.Retention))
}

// LatestReplayID returns the newest replay ID the server has issued on any topic.
func (s *Server) LatestReplayID() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return EncodeReplayID(s.counter)
}

// demandLocked records that a subscriber of topicName waits at the tip with pending credit, for generators that
// publish as fast as clients read.
func (s *Server) demandLocked(topicName string, pending int32) {
	if s.demand == nil {
		s.demand = make(map[string]int32)
	}
	s.demand[topicName] = pending
	signal(&s.demandCh)
}

// takeDemand returns and clears the credit waiting on topicName.
func (s *Server) takeDemand(topicName string) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.demand[topicName]
	delete(s.demand, topicName)
	return n
}

// demandChan returns a channel closed when a subscriber next waits at the tip with credit.
func (s *Server) demandChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.demandCh
}

// Subscribers returns how many Subscribe and ManagedSubscribe streams on topicName have passed their first
// request (their start position is fixed), so a test can publish "after subscribing" without a race.
func (s *Server) Subscribers(topicName string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.topics[topicName]; ok {
		return t.subscribers
	}
	return 0
}
