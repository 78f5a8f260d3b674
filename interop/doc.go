// Package interop proves the emulator faithful with a client sfarchive did not write: the npm package
// salesforce-pubsub-api-client (pozil's Node client, pinned in nodeclient/package.json), driven by
// nodeclient/client.mjs.
//
// The package holds only tests. They need node (>= 20.18.1, what the client's undici dependency requires) and
// npm on PATH; when nodeclient/node_modules is missing or does not match nodeclient/package-lock.json they run
// `npm ci --no-audit --no-fund` themselves. Without node or npm they fail with a message saying so: they are
// never skipped.
//
// Run them with
//
//	go test -race ./interop/
//
// What they show:
//   - the Node client connects over TLS (a self-signed certificate, rejectUnauthorizedSsl: false) with
//     user-supplied auth, subscribes to /data/AccountChangeEvent from EARLIEST and receives every generated
//     event with the right replay ID, event ID and schema ID, and the changedFields (and nulledFields and
//     diffFields) it expands from the bitmaps equal the generator's ground truth;
//   - an Order_Event__e published by the Node client through the Publish RPC is archived by
//     `sfarchive subscribe` and printed with the published values by `sfarchive query`.
package interop
