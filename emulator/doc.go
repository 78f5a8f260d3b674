// Package emulator is an in-process Salesforce Pub/Sub API server for tests, demos and users' own tests.
//
// It implements the generated pubsubpb.PubSubServer interface (every RPC: Subscribe, GetTopic, GetSchema,
// Publish, PublishStream, ManagedSubscribe) with the behaviour described in pubsub/PROTOCOL.md, and is reached
// through the real generated client over loopback TCP, plaintext (Start, Serve) or TLS with a generated
// self-signed certificate (GenerateCert, StartTLS, ServeTLS). Service returns the implementation for callers
// that register it on their own grpc.Server (e.g. over bufconn).
//
// # What it does
//
//   - Auth: every RPC needs the metadata accesstoken, instanceurl and tenantid (keys matched case-insensitively).
//     Tokens come from AddToken (with a lifetime) and ExpireTokens; tenantid must be Config.OrgID as 15 or 18
//     characters or core/<sub>/<id>; instanceurl must equal Config.InstanceURL when that is set. Anything else →
//     UNAUTHENTICATED with error-code sfdc.platform.eventbus.grpc.service.auth.error.
//   - Errors: every error carries the trailers error-code (unless the fault has none), rpc-id and type (the RPC
//     name), and its message ends with " rpcId: <uuid>".
//   - Topics and schemas: built-in topics from the embedded schemas/*.avsc: /data/AccountChangeEvent,
//     /data/ContactChangeEvent, /data/OpportunityChangeEvent, /data/ChangeEvents (carries all three entities),
//     /event/Order_Event__e (real schema ID _CADE3qaegX3ECEW0rlbYA), /event/Test_Event__e and
//     /event/CM_Test_Event_Two__e (real ID K98aAtiNFBjA-PJlcvaQ2g). Other schema IDs are SchemaFingerprint: the
//     first 16 bytes of SHA-256 of the JSON, base64url (22 characters). AddTopic and AddSchema add more.
//   - Replay IDs: 10 bytes, an 8-byte big-endian counter and 00 00. The counter is shared by all topics, so one
//     topic's IDs are increasing but not contiguous. CUSTOM accepts 8- or 10-byte IDs and starts after the ID.
//   - Subscribe: presets only on the first request; num_requested adds credit, capped at 100 outstanding;
//     pending_num_requested, latest_replay_id and rpc_id on every response; a keepalive (no events, an advanced
//     latest_replay_id) after Config.Keepalive with credit pending and nothing to send; the stream ends with
//     status OK after Config.IdleClose without credit; later requests naming another topic, or num_requested <= 0
//     → INVALID_ARGUMENT; unknown, malformed or purged CUSTOM IDs → INVALID_ARGUMENT replayid.corrupted; CUSTOM
//     without an ID → replayid.validation.failed; unknown topic → PERMISSION_DENIED.
//   - Retention: events older than Config.Retention (72 h) are dropped lazily; Purge drops them on demand.
//   - Publish / PublishStream: per-event results in request order, correlation keys as documented, 1 MB per
//     event, 4 MB per request (UNAVAILABLE without error-code, like the real proxy), /data/ topics refuse
//     publishing, the Avro payload is not validated. PublishStream answers each request and closes after
//     Config.PublishStreamIdle without requests.
//   - ManagedSubscribe: subscriptions from AddManagedSubscription; commits stored server-side and answered in
//     CommitReplayResponse (bad ones with ErrorCode COMMIT, stream continues); a new stream starts after the
//     commit (or at ErrorRecoveryReplay when that ID expired, or DefaultReplay without a commit); a second holder →
//     ALREADY_EXISTS; no commit for Config.ManagedCommitTimeout → DEADLINE_EXCEEDED.
//   - Test hooks: Publish, Events, Requests (every request, with credit and commits; see MaxRequestLog), Calls,
//     Subscribers (streams past their first request, to publish after a LATEST subscribe without a race),
//     CommittedReplayID, LoadSample and PublishSample (serve a recorded event byte for byte), Generator (seeded
//     CDC and platform events with GroundTruth; Run publishes at a rate or as fast as subscribers read), faults
//     (FailCall, EndStreamsAfter, Stall, SetLatency, Throttle, ExpireTokens).
//
// # Differences from the real service
//
//   - Timers (keepalive, idle close, publish-stream and commit timeouts) use the wall clock; Config.Now only
//     drives timestamps, retention and token expiry.
//   - Keepalives advance the shared counter by one, standing in for other orgs' traffic on the real bus.
//   - A CUSTOM replay ID is valid when it is after the topic's purge point and not beyond the newest ID issued;
//     the real service's exact rule (for IDs never issued to this topic) is unknown.
//   - An event is delivered in one response with as many others as credit allows (up to ~3 MB); the real
//     service's batching is unknown.
//   - ExpireTokens does not end open streams (the docs imply the real service does not either).
//   - Managed subscriptions are released as soon as their stream ends (the real one holds them for seconds after
//     a clean close and about 15 minutes after an unclean one).
//   - Publish validates schema IDs against the topic's schemas; CreatedDate/CreatedById presence is not checked.
//   - No per-org allocations, no concurrent-client limit, no auth_refresh handling.
//
// # Unconfirmed facts it follows (see PROTOCOL.md)
//
//   - Error codes and statuses of: unknown topic (topic.not.found, PERMISSION_DENIED), unknown schema
//     (schema.validation.failed, NOT_FOUND), num_requested <= 0 (INVALID_ARGUMENT), throttling
//     (service.protection.triggered, RESOURCE_EXHAUSTED), publishing to a /data/ topic (topic.meta.permission,
//     PERMISSION_DENIED), PublishStream idle close (publish.stream.sweeper.timeout, DEADLINE_EXCEEDED), managed
//     subscription validation errors (codes NOT_FOUND, FAILED_PRECONDITION, INVALID_ARGUMENT) and the commit
//     timeout code managed.subscription.commit.timeout (the real one's error-code is unknown).
//   - The meaning of the last two replay ID bytes; the schema fingerprint algorithm; ChangeType symbols after
//     UPDATE; the Contact and Opportunity schemas (written in the style of the reconstructed Account schema,
//     Contact's Name as a PersonName record); Date fields as epoch ms at midnight; GAP_OVERFLOW carrying only
//     entityName, changeType and commitTimestamp (other header fields empty or zero).
//   - Whether 8-byte replay IDs are still accepted by the real service.
package emulator
