// Package interop proves the emulator faithful with a client sfarchive did not write: the npm package
// salesforce-pubsub-api-client 5.5.2 (pozil's Node client, pinned exactly in nodeclient/package.json and
// nodeclient/package-lock.json), driven by nodeclient/client.mjs.
//
// The package holds only tests. They need node (>= 20.18.1, what the client's undici dependency requires) and
// npm on PATH; when nodeclient/node_modules is missing or does not match nodeclient/package-lock.json they run
// `npm ci --no-audit --no-fund` themselves. Without node or npm they fail with a message saying so: they are
// never skipped. Test 2 also builds ./cmd/sfarchive with the go command on PATH.
//
// Run them with
//
//	go test -race ./interop/
//
// What they show, every client run over TLS with a freshly generated self-signed certificate
// (rejectUnauthorizedSsl: false) and user-supplied auth (accesstoken, instanceurl, tenantid):
//   - the client subscribes to /data/AccountChangeEvent from EARLIEST and receives every one of 320 generated
//     events, with the replay ID, event ID and schema ID the emulator stored; the changedFields, nulledFields
//     and diffFields it expands from the bitmaps, the rest of the header and every decoded field value equal
//     the generator's ground truth;
//   - keepalives (empty FetchResponses while credit is pending) reach the client with a latest_replay_id it can
//     decode, at or beyond the last event and never going back;
//   - a subscription from a replay ID, which the client sends as 8 bytes while the emulator issues 10-byte IDs,
//     starts right after that event;
//   - an Order_Event__e the client publishes with the Publish RPC is archived by `sfarchive subscribe` and
//     printed with the published values by `sfarchive query`;
//   - a batch published on a PublishStream comes back in order with the client's correlation keys;
//   - errors reach the client with their status code, the error-code, rpc-id and type trailers, and a message
//     ending in " rpcId: <uuid>".
//
// Every in-process emulator is stopped at cleanup and a goroutine leak check runs after it.
package interop
