// A graphql-transport-ws client (the protocol of /graphql's WebSocket), written for this page.
// It reconnects after a dropped connection and subscribes again every operation that has not
// completed, asking each for its variables anew (so a log resumes after the last seq it has).
// The key travels in connection_init's payload, never in the URL.

const RETRY_MS = [250, 500, 1000, 2000, 4000];
const FATAL = new Set([4400, 4401, 4403, 4429]); // bad message, unauthorised, forbidden, too many

export class LiveClient {
  constructor(url, apiKey, { onState = () => {}, onFatal = () => {} } = {}) {
    this.url = url;
    this.apiKey = apiKey;
    this.onState = onState;
    this.onFatal = onFatal;
    this.ops = new Map(); // id -> {query, variables(), next, error, complete}
    this.nextId = 1;
    this.ws = null;
    this.acked = false;
    this.closed = false;
    this.attempt = 0;
    this.timer = null;
    this.connects = 0; // connections acknowledged so far (1 + reconnects)
  }

  subscribe(op) {
    const id = String(this.nextId++);
    this.ops.set(id, op);
    if (this.acked) this._send({ id, type: "subscribe", payload: this._payload(op) });
    else if (!this.ws) this._open();
    return () => {
      if (this.ops.delete(id) && this.acked) this._send({ id, type: "complete" });
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  _payload(op) {
    return { query: op.query, variables: op.variables() };
  }

  _send(message) {
    this.ws.send(JSON.stringify(message));
  }

  _open() {
    if (this.closed) return;
    this.onState(this.connects ? "reconnecting" : "connecting");
    const ws = (this.ws = new WebSocket(this.url, "graphql-transport-ws"));
    this.acked = false;
    ws.onopen = () => this._send({ type: "connection_init", payload: { apiKey: this.apiKey } });
    ws.onmessage = (event) => this._receive(JSON.parse(event.data));
    ws.onclose = (event) => this._closed(ws, event);
  }

  _receive(message) {
    const op = this.ops.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.acked = true;
        this.attempt = 0;
        this.connects += 1;
        this.onState("live");
        for (const [id, pending] of this.ops) {
          this._send({ id, type: "subscribe", payload: this._payload(pending) });
        }
        break;
      case "ping":
        this._send({ type: "pong" });
        break;
      case "next":
        if (op) op.next(message.payload);
        break;
      case "error":
        if (op) {
          this.ops.delete(message.id);
          op.error(message.payload);
        }
        break;
      case "complete":
        if (op) {
          this.ops.delete(message.id);
          op.complete();
        }
        if (this.ops.size === 0) this.close();
        break;
    }
  }

  _closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.acked = false;
    if (this.closed || this.ops.size === 0) {
      this.onState("closed");
      return;
    }
    if (FATAL.has(event.code)) {
      this.closed = true;
      this.onState("closed");
      this.onFatal(event.code, event.reason);
      return;
    }
    const delay = RETRY_MS[Math.min(this.attempt++, RETRY_MS.length - 1)];
    this.onState("reconnecting");
    this.timer = setTimeout(() => this._open(), delay);
  }
}
