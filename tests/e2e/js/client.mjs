// One GraphQL operation through a real npm client, for tests/e2e/test_clients.py.
//
//   node client.mjs <ws|sse> <url> <key> <query> [variables JSON] [--resume]
//
// ws:  graphql-ws (graphql-transport-ws), the key as connectionParams.apiKey.
// sse: graphql-sse in distinct connections mode, the key as x-api-key; with --resume, a
//      connection that breaks is retried (the client's own retry) with Last-Event-ID set
//      to the last deploymentLogs seq received, so the stream resumes after it.
// Prints one JSON line per result ({"next": ...}), then {"complete": true} or
// {"error": ...} (exit 1), and {"connects": n} for sse.
import { createClient as createWsClient } from "graphql-ws";
import { createClient as createSseClient } from "graphql-sse";
import WebSocket from "ws";

const [transport, url, key, query, variablesJson, flag] = process.argv.slice(2);
const variables = variablesJson ? JSON.parse(variablesJson) : {};
const resume = flag === "--resume";
const out = (value) => process.stdout.write(JSON.stringify(value) + "\n");

let lastSeq = null;
let connects = 0;

function makeClient() {
  if (transport === "ws") {
    return createWsClient({
      url,
      webSocketImpl: WebSocket,
      connectionParams: { apiKey: key },
      retryAttempts: 0,
      lazy: true,
    });
  }
  if (transport === "sse") {
    return createSseClient({
      url,
      headers: () => {
        connects += 1;
        const headers = { "x-api-key": key };
        if (resume && lastSeq !== null) headers["last-event-id"] = String(lastSeq);
        return headers;
      },
      retryAttempts: resume ? 50 : 0,
      retry: () => new Promise((resolve) => setTimeout(resolve, 20)),
    });
  }
  throw new Error(`unknown transport ${transport}`);
}

const client = makeClient();
try {
  for await (const result of client.iterate({ query, variables })) {
    const lines = result.data && result.data.deploymentLogs;
    if (Array.isArray(lines) && lines.length) lastSeq = lines[lines.length - 1].seq;
    out({ next: result });
  }
  out({ complete: true });
} catch (err) {
  const detail = err instanceof Error ? err.message : err;
  out({ error: detail && detail.code !== undefined ? { code: detail.code, reason: detail.reason } : detail });
  process.exitCode = 1;
} finally {
  if (transport === "sse") out({ connects });
  client.dispose();
}
