// The JavaScript half of the edge build's outbound transport (Go's
// bridge.FetchTransport): fetch() with the request and response headers
// as one "name: value" string each and the body read chunk by chunk on
// Go's request, so a relayed request costs few values crossing into Go.
export function installFetchBridge() {
  const calls = new Map(); // id → { ac, reader }
  let onHead = null, onChunk = null;
  const message = (err) => String((err && err.message) || err);
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
      globalThis.fetch(url, { method, headers, body: body ?? undefined, signal: call.ac.signal }).then(
        (res) => {
          let h = "";
          for (const [k, v] of res.headers) h += k + ": " + v + "\n";
          call.reader = res.body ? res.body.getReader() : null;
          onHead(id, res.status, h, null);
        },
        (err) => {
          calls.delete(id);
          onHead(id, 0, "", message(err));
        },
      );
    },
    read(id) {
      const call = calls.get(id);
      if (!call || !call.reader) {
        onChunk(id, null, null);
        return;
      }
      call.reader.read().then(
        ({ done, value }) => onChunk(id, done ? null : value, null),
        (err) => onChunk(id, null, message(err)),
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
