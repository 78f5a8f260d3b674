// client.mjs drives the third-party npm package salesforce-pubsub-api-client (pozil's Node client) against the
// sfarchive emulator. It is run by `go test ./interop/`; it is not part of sfarchive itself.
//
//   node client.mjs subscribe   subscribe to SFA_TOPIC from EARLIEST (or, with SFA_REPLAY_ID, after that
//                               replay ID) and print one JSON line per event, exiting 0 once SFA_COUNT
//                               events arrived (plus a short grace period that catches surplus deliveries,
//                               which are printed too)
//   node client.mjs publish     publish one event (SFA_PAYLOAD, in the client's Avro-JSON form) to SFA_TOPIC
//                               with the Publish RPC and print the publish result as one JSON line
//   node client.mjs publish-batch
//                               publish the events of SFA_EVENTS (a JSON array of {"id":…,"payload":…}) in
//                               one request on a PublishStream and print each result as one JSON line
//
// Environment:
//   SFA_ENDPOINT      host:port of the emulator (TLS; the certificate is not verified)
//   SFA_ACCESS_TOKEN, SFA_INSTANCE_URL (https://...), SFA_ORG_ID   user-supplied auth
//   SFA_TOPIC         topic name
//   SFA_COUNT         subscribe: events to wait for
//   SFA_REPLAY_ID     subscribe, optional: start after this replay ID, in decimal as the client numbers them
//                     (it sends them back as 8 bytes, big-endian)
//   SFA_GRACE_MS      subscribe: wait after the last expected event (default 300)
//   SFA_KEEPALIVES    subscribe, optional: after the events, also wait for this many keepalives (empty
//                     FetchResponses) and print {"keepalive":n,"afterEvents":…,"latestReplayId":…} for each
//   SFA_PAYLOAD       publish: the event as JSON in the client's Avro-JSON form (unions wrapped)
//   SFA_EVENT_ID      publish, optional: correlation key, sent as ProducerEvent.id
//   SFA_EVENTS        publish-batch: JSON array of {"id": optional correlation key, "payload": as SFA_PAYLOAD}
//   SFA_TIMEOUT_MS    hard limit for the whole run (default 60000)
//   SFA_DEBUG=1       the client's debug and info logs on stderr
//
// stdout carries only JSON lines; the client's own logs go to stderr. BigInt values (Avro longs beyond 2^53,
// e.g. commitNumber) are printed as strings. Any error exits non-zero with a message on stderr; a gRPC status
// the client received is also printed to stdout as {"grpcError":{"code":…,"details":…,"metadata":{…}}}.

import PubSubApiClient from 'salesforce-pubsub-api-client';

const mode = process.argv[2];
const debug = process.env.SFA_DEBUG === '1';

let failed = false;

function fail(message, cause) {
    if (failed) {
        return;
    }
    failed = true;
    let text = `nodeclient ${mode ?? ''}: ${message}`;
    if (cause !== undefined) {
        text += `: ${describe(cause)}`;
    }
    // A gRPC status anywhere in the cause chain is also printed to stdout, as one JSON line, so that tests can
    // check what the client saw: status code, details and trailers.
    const status = grpcStatusOf(cause);
    if (status) {
        process.stdout.write(toJSON({ grpcError: status }) + '\n');
    }
    process.stderr.write(text + '\n', () => process.exit(1));
    // If stderr never drains, still exit.
    setTimeout(() => process.exit(1), 200).unref();
}

function grpcStatusOf(err) {
    for (let e = err, depth = 0; e && typeof e === 'object' && depth < 6; e = e.cause, depth++) {
        if (typeof e.code === 'number' && e.metadata && typeof e.metadata.getMap === 'function') {
            return { code: e.code, details: e.details, metadata: e.metadata.getMap() };
        }
    }
    return undefined;
}

function describe(err) {
    if (err === null || err === undefined) {
        return String(err);
    }
    const parts = [];
    let e = err;
    for (let depth = 0; e && depth < 6; depth++) {
        if (e instanceof Error || typeof e === 'object') {
            let line = e.message ?? String(e);
            if (e.code !== undefined) {
                line += ` (code ${e.code})`;
            }
            if (e.metadata && typeof e.metadata.getMap === 'function') {
                line += ` metadata=${toJSON(e.metadata.getMap())}`;
            }
            parts.push(line);
            e = e.cause;
        } else {
            parts.push(String(e));
            break;
        }
    }
    return parts.join(' <- caused by: ');
}

function toJSON(value) {
    return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v));
}

function env(name, required = true) {
    const v = process.env[name];
    if (required && (v === undefined || v === '')) {
        fail(`missing environment variable ${name}`);
        return undefined;
    }
    return v;
}

function intEnv(name, fallback) {
    const raw = process.env[name];
    if (raw === undefined || raw === '') {
        return fallback;
    }
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) {
        fail(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    }
    return n;
}

// The client logs to the logger it is given; keep stdout for our JSON lines.
const logger = {
    debug: (...a) => debug && console.error('[debug]', ...a),
    info: (...a) => debug && console.error('[info]', ...a),
    warn: (...a) => console.error('[warn]', ...a),
    error: (...a) => console.error('[error]', ...a),
};

process.on('unhandledRejection', (reason) => fail('unhandled promise rejection inside the client', reason));
process.on('uncaughtException', (err) => fail('uncaught exception inside the client', err));

const timeoutMs = intEnv('SFA_TIMEOUT_MS', 60000);
setTimeout(() => fail(`hard timeout after ${timeoutMs} ms`), timeoutMs);

function newClient() {
    return new PubSubApiClient(
        {
            authType: 'user-supplied',
            accessToken: env('SFA_ACCESS_TOKEN'),
            instanceUrl: env('SFA_INSTANCE_URL'),
            organizationId: env('SFA_ORG_ID'),
            pubSubEndpoint: env('SFA_ENDPOINT'),
            rejectUnauthorizedSsl: false,
        },
        logger
    );
}

function finish(client, code) {
    try {
        client?.close();
    } catch (err) {
        process.stderr.write(`nodeclient: close: ${describe(err)}\n`);
    }
    process.stdout.write('', () => process.exit(code));
}

async function subscribe() {
    const topic = env('SFA_TOPIC');
    const want = intEnv('SFA_COUNT', 0);
    const graceMs = intEnv('SFA_GRACE_MS', 300);
    const wantKeepalives = intEnv('SFA_KEEPALIVES', 0);
    if (want < 1) {
        fail('SFA_COUNT must be at least 1');
        return;
    }
    const client = newClient();
    await client.connect();
    let received = 0;
    let keepalives = 0;
    let done = false;
    const callback = (info, type, data) => {
        switch (type) {
            case 'event': {
                received++;
                process.stdout.write(
                    toJSON({
                        seq: received,
                        // The client decodes the replay ID as Number(first 8 bytes, big-endian).
                        replayId: String(data.replayId),
                        id: data.id,
                        schemaId: data.schemaId,
                        payload: data.payload,
                    }) + '\n'
                );
                if (received === want && wantKeepalives === 0 && !done) {
                    done = true;
                    setTimeout(() => finish(client, 0), graceMs);
                }
                break;
            }
            case 'grpcKeepAlive': {
                if (wantKeepalives === 0) {
                    break;
                }
                keepalives++;
                // The client passes no data with a keepalive; it has stored the response's latest_replay_id,
                // decoded like an event's, in the subscription info.
                process.stdout.write(
                    toJSON({ keepalive: keepalives, afterEvents: received, latestReplayId: String(info.lastReplayId) }) +
                        '\n'
                );
                if (received >= want && keepalives >= wantKeepalives && !done) {
                    done = true;
                    finish(client, 0);
                }
                break;
            }
            case 'error':
                fail(`subscription error after ${received} events`, data);
                break;
            case 'end':
                if (!done) {
                    fail(`stream ended after ${received} of ${want} events`);
                }
                break;
            case 'grpcStatus':
                if (data && data.code !== 0 && !done) {
                    fail(`stream status after ${received} of ${want} events`, data);
                }
                break;
            default:
                // lastEvent cannot happen (infinite request).
                break;
        }
    };
    // numRequested null: the client asks for 100 events and asks again after each 100, forever (client.js
    // #subscribe, isInfiniteEventRequest). A number above 100 would be capped and stop at 100.
    const replayId = env('SFA_REPLAY_ID', false);
    if (replayId) {
        if (!/^[0-9]+$/.test(replayId)) {
            fail(`SFA_REPLAY_ID must be a decimal number, got ${JSON.stringify(replayId)}`);
            return;
        }
        client.subscribeFromReplayId(topic, callback, null, Number(replayId));
    } else {
        client.subscribeFromEarliestEvent(topic, callback, null);
    }
}

async function publish() {
    const topic = env('SFA_TOPIC');
    let payload;
    try {
        payload = JSON.parse(env('SFA_PAYLOAD'));
    } catch (err) {
        fail('SFA_PAYLOAD is not valid JSON', err);
        return;
    }
    const client = newClient();
    await client.connect();
    const result = await client.publish(topic, payload, env('SFA_EVENT_ID', false) || undefined);
    if (result.error) {
        fail('publish result carries an error', new Error(toJSON(result.error)));
        return;
    }
    process.stdout.write(
        toJSON({
            replayId: String(result.replayId),
            correlationKey: result.correlationKey,
        }) + '\n'
    );
    finish(client, 0);
}

async function publishBatch() {
    const topic = env('SFA_TOPIC');
    let events;
    try {
        events = JSON.parse(env('SFA_EVENTS'));
    } catch (err) {
        fail('SFA_EVENTS is not valid JSON', err);
        return;
    }
    if (!Array.isArray(events) || events.length === 0) {
        fail('SFA_EVENTS must be a non-empty JSON array');
        return;
    }
    const client = newClient();
    await client.connect();
    // The client resolves publishBatch once the request is written; results come through the callback.
    const callback = (_info, type, data) => {
        switch (type) {
            case 'publishResponse': {
                for (const r of data.results) {
                    if (r.error) {
                        fail('publish result carries an error', new Error(toJSON(r.error)));
                        return;
                    }
                    process.stdout.write(
                        toJSON({ replayId: String(r.replayId), correlationKey: r.correlationKey }) + '\n'
                    );
                }
                finish(client, 0);
                break;
            }
            case 'error':
                fail('publish stream error', data);
                break;
            case 'grpcStatus':
                if (data && data.code !== 0) {
                    fail('publish stream status', data);
                }
                break;
            default:
                break;
        }
    };
    await client.publishBatch(topic, events, callback);
}

switch (mode) {
    case 'subscribe':
        subscribe().catch((err) => fail('subscribe failed', err));
        break;
    case 'publish':
        publish().catch((err) => fail('publish failed', err));
        break;
    case 'publish-batch':
        publishBatch().catch((err) => fail('publish-batch failed', err));
        break;
    default:
        fail('usage: node client.mjs subscribe|publish|publish-batch (configured through SFA_* environment variables)');
}
