package emulator

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
)

// sampleFile is the shape of the recorded events in ../shared/pubsub/samples/.
type sampleFile struct {
	TopicName     string `json:"topic_name"`
	ConsumerEvent struct {
		Event struct {
			ID         string `json:"id"`
			SchemaID   string `json:"schema_id"`
			PayloadHex string `json:"payload_hex"`
		} `json:"event"`
	} `json:"consumer_event"`
}

// LoadSample publishes a recorded event (a JSON file with topic_name and consumer_event.event.{id, schema_id,
// payload_hex}, like samples/AccountChangeEvent-update-2022.json) with its payload bytes, event ID and schema ID
// unchanged. A schema ID the server does not know is registered on the topic with the topic's current schema
// JSON (the bundled AccountChangeEvent.avsc decodes the real sample) without becoming current. The event gets
// a new replay ID from the server.
func (s *Server) LoadSample(path string) (StoredEvent, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return StoredEvent{}, fmt.Errorf("load sample: %w", err)
	}
	return s.PublishSample(b)
}

// PublishSample is LoadSample on the file's contents.
func (s *Server) PublishSample(data []byte) (StoredEvent, error) {
	var f sampleFile
	if err := json.Unmarshal(data, &f); err != nil {
		return StoredEvent{}, fmt.Errorf("%w: %v", ErrBadSample, err)
	}
	ev := f.ConsumerEvent.Event
	payload, err := hex.DecodeString(ev.PayloadHex)
	if err != nil || f.TopicName == "" || ev.SchemaID == "" {
		return StoredEvent{}, fmt.Errorf("%w: need topic_name, schema_id and hex payload_hex", ErrBadSample)
	}
	s.mu.Lock()
	t, ok := s.topics[f.TopicName]
	if !ok {
		s.mu.Unlock()
		return StoredEvent{}, fmt.Errorf("load sample: topic %s: %w", f.TopicName, ErrUnknownTopic)
	}
	if _, known := s.schemas[ev.SchemaID]; !known {
		if err := s.addSchemaLocked(ev.SchemaID, s.schemas[t.schemaID].json); err != nil {
			s.mu.Unlock()
			return StoredEvent{}, fmt.Errorf("load sample: %w", err)
		}
	}
	if !slices.Contains(t.schemaIDs, ev.SchemaID) {
		t.schemaIDs = append(t.schemaIDs, ev.SchemaID)
	}
	s.mu.Unlock()
	e := Event{ID: ev.ID, SchemaID: ev.SchemaID, Payload: payload}
	ids, err := s.Publish(f.TopicName, e)
	if err != nil {
		return StoredEvent{}, err
	}
	return StoredEvent{ReplayID: ids[0], Event: e, PublishedAt: s.now()}, nil
}
