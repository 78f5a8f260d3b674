// Package subscriber archives Salesforce Pub/Sub API events into a Store.
//
// Run opens one gRPC connection, checks every topic with GetTopic (so an
// unreachable endpoint, a rejected token or an unknown topic fails at once,
// naming the endpoint), binds the archive to the credentials' org, and then runs
// one Subscribe stream per topic plus one writer goroutine.
//
// # Streams
//
// Each topic starts from its stored mark (CUSTOM), or, when it has none, from
// Config.From. The client keeps at most Config.Batch (≤ 100) events requested
// and outstanding; credit is counted locally (each request adds, each event
// consumes) and never below the server's pending_num_requested. More credit is
// asked for only while the received-but-uncommitted events stay under
// Config.MaxUncommitted, so memory is bounded whatever the backlog.
//
// Every response becomes an archive.TopicBatch: the events exactly as received
// and the response's latest_replay_id. A keepalive (a response without events)
// is handed over too, so the mark of a quiet topic keeps moving and never ages
// out of retention. Schema IDs the archive does not hold are fetched with
// GetSchema once and travel in the same batch as their first events; a blank
// schema ID is stored raw and never looked up, and so are the events of a
// schema the server refuses to return (asked once per run, logged).
//
// # Writer and marks
//
// One writer goroutine owns Store.Append. It folds every batch waiting from all
// topics into one Append call (group commit: one transaction, one fsync). A
// topic's mark moves only when its batch is committed, and a stream that ends
// waits until everything it handed over is committed before it resubscribes
// from the mark. A crash therefore costs a redelivery (the archive skips
// duplicates), never a loss.
//
// # Errors
//
// Failures are classified by gRPC status and the error-code trailer:
//
//   - service.auth.* or UNAUTHENTICATED: new credentials from auth.Source.Refresh,
//     then resubscribe from the mark. A source that cannot refresh (a given
//     token) ends the run with ErrAuth.
//   - subscription.fetch.replayid.corrupted / .validation.failed: with
//     OnInvalidReplay "earliest" (default) a gap record is written and the topic
//     resubscribes from EARLIEST; the rejected ID is never sent again and the
//     topic never jumps to LATEST. With "fail" the run stops with
//     ErrInvalidReplay explaining the position.
//   - UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED, UNKNOWN, DEADLINE_EXCEEDED,
//     ABORTED, an unexpected end of stream, a missing trailer: capped exponential
//     backoff with jitter (reset once a response arrives), then resubscribe from
//     the mark.
//   - The stream closed with status OK (the server's idle close): resubscribe
//     from the mark; it is not the end of the run.
//   - PERMISSION_DENIED, NOT_FOUND, INVALID_ARGUMENT and other refusals: that
//     topic stops with ErrTopicRefused, carrying the server's message and
//     rpc-id; the other topics go on.
//
// A watchdog cancels a stream that sends nothing (no event, no keepalive) for
// Config.Watchdog and resubscribes from the mark; HTTP/2 keepalive pings watch
// the connection underneath.
//
// # Stopping
//
// Cancelling ctx, reaching Config.MaxEvents or Config.ExitWhenIdle stops asking
// for events, commits what was received and makes Run return nil. MaxEvents is
// exact: the writer commits no event beyond it (a batch crossing the limit is
// cut and its mark set to its last kept event; later batches are dropped), so
// what was received past the limit is redelivered by the next run.
// ExitWhenIdle counts only while every topic has an open stream: a topic that
// is reconnecting or backing off restarts the idle clock.
package subscriber
