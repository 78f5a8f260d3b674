// Drives the third-party npm package salesforce-pubsub-api-client against the emulator (see npmclient_test.go).
// Usage: node check.mjs <input.json>; input: {endpoint, token, instanceUrl, topic, count, truth: {eventId: [changed fields]}}.
// Prints one JSON line: {received, mismatches, examples, publish}.
import fs from 'fs';
import PubSubApiClient from 'salesforce-pubsub-api-client';

const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const quiet = { debug() {}, info() {}, warn() {}, error(...a) { console.error(...a); } };
const client = new PubSubApiClient({
  authType: 'user-supplied',
  accessToken: input.token,
  instanceUrl: input.instanceUrl,
  pubSubEndpoint: input.endpoint,
  rejectUnauthorizedSsl: false,
}, quiet);
await client.connect();

const result = { received: 0, mismatches: 0, examples: [] };
await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`timeout after ${result.received} events`)), 60000);
  client.subscribeFromEarliestEvent(input.topic, (_sub, type, data) => {
    if (type === 'error') { clearTimeout(timer); reject(new Error(JSON.stringify(data))); return; }
    if (type !== 'event') return;
    result.received++;
    const want = JSON.stringify(input.truth[data.id] ?? null);
    const got = JSON.stringify(data.payload.ChangeEventHeader.changedFields);
    if (want !== got) {
      result.mismatches++;
      if (result.examples.length < 5) result.examples.push({ id: data.id, want, got });
    }
    if (result.received >= input.count) { clearTimeout(timer); resolve(); }
  }, null);
});

result.publish = await client.publish('/event/Order_Event__e', {
  CreatedDate: 1764000000000,
  CreatedById: '0055g00000AbCdEAAV',
  Order_Number__c: { string: 'N-42' },
  City__c: { string: 'Paris' },
  Amount__c: { double: 99.5 },
}, 'npm-order-1');
console.log(JSON.stringify(result));
client.close();
process.exit(0);
