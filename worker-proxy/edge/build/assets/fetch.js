// The JavaScript half of the edge build's outbound transport (Go's
// bridge.FetchTransport): fetch() with the request and response headers
// as one "name: value" string each, so a relayed request costs few values
// crossing into Go. A response whose length is known and small
// (Content-Length ≤ WHOLE_MAX, not an event stream) is read whole and
// handed to Go with its head, in one call; any other body is read chunk by
// chunk on Go's request (backpressure). A call is forgotten here once its
// body ended, failed or was aborted.
const WHOLE_MAX = 1 << 20;

export function installFetchBridge() {
  const calls = new Map(); // id → { ac, reader }
  let onHead = null, onChunk = null;
  const message = (err) => String((err && err.message) || err);
  // whole reports whether res's body is to be read in one piece.
  const whole = (res) => {
    const n = Number(res.headers.get("content-length") ?? -1);
    if (!(n >= 0 && n <= WHOLE_MAX)) return false;
    return !(res.headers.get("content-type") ?? "").startsWith("text/event-stream");
  };
  globalThis.__keypoolFetch = {
    init(head, chunk) {
      onHead = head;
      onChunk = chunk;
    },
    start(id, method, url, head, body) {
      const call = { ac: new AbortController(), reader: null };
      calls.set(id, call);
      const headers = new Headers();
      for (const line of head.split("\n")) {
        const i = line.indexOf(": ");
        if (i > 0) headers.append(line.slice(0, i), line.slice(i + 2));
      }
      const failed = (err) => {
        if (calls.get(id) !== call) return; // aborted by Go
        calls.delete(id);
        onHead(id, 0, "", message(err), null);
      };
      globalThis.fetch(url, { method, headers, body: body ?? undefined, signal: call.ac.signal }).then(
        (res) => {
          let h = "";
          for (const [k, v] of res.headers) h += k + ": " + v + "\n";
          if (!res.body || whole(res)) {
            const got = res.body ? res.arrayBuffer() : Promise.resolve(null);
            return got.then((b) => {
              if (calls.get(id) !== call) return;
              calls.delete(id);
              // Even an empty body is a Uint8Array: Go then knows it is whole.
              onHead(id, res.status, h, null, b ? new Uint8Array(b) : new Uint8Array(0));
            }, failed);
          }
          call.reader = res.body.getReader();
          onHead(id, res.status, h, null, null);
        },
        failed,
      );
    },
    read(id) {
      const call = calls.get(id);
      if (!call || !call.reader) {
        onChunk(id, null, null);
        return;
      }
      call.reader.read().then(
        ({ done, value }) => {
          if (calls.get(id) !== call) return; // aborted by Go
          if (done) calls.delete(id);
          onChunk(id, done ? null : value, null);
        },
        (err) => {
          if (calls.get(id) !== call) return;
          calls.delete(id);
          onChunk(id, null, message(err));
        },
      );
    },
    abort(id) {
      const call = calls.get(id);
      if (!call) return;
      calls.delete(id);
      if (call.reader) call.reader.cancel().catch(() => {});
      call.ac.abort();
    },
  };
}
