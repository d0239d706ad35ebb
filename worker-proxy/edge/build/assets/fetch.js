// The JavaScript half of the edge build's outbound transport (Go's
// bridge.FetchTransport): fetch() with the request and response headers
// as one "name: value" string each and the body read chunk by chunk on
// Go's request, so a relayed request costs few values crossing into Go.
//
// Memory: a response body is read with a BYOB reader into buffers of
// CHUNK bytes that are reused (per call, then from a small pool). A
// chunk handed to Go stays referenced from Go's value table until Go's
// garbage collector finalizes it, which may be thousands of requests
// later; with the default reader every chunk is a view on a fresh 64 KiB
// ArrayBuffer (Deno), so those references kept tens of MB alive and left
// the process's malloc heap fragmented. Reading the next chunk into the
// same buffer detaches the old view, so what Go still references holds
// no memory. Hosts without BYOB readers get the default reader.
const CHUNK = 32 << 10;
const POOL = 64;

export function installFetchBridge() {
  const calls = new Map(); // id → { ac, reader, byob, buf }
  const pool = []; // free CHUNK-byte buffers
  const release = (call) => {
    if (call.buf && pool.length < POOL) pool.push(call.buf);
    call.buf = null;
  };
  let onHead = null, onChunk = null;
  const message = (err) => String((err && err.message) || err);
  globalThis.__keypoolFetch = {
    init(head, chunk) {
      onHead = head;
      onChunk = chunk;
    },
    start(id, method, url, head, body) {
      const call = { ac: new AbortController(), reader: null, byob: false, buf: null };
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
          if (res.body) {
            try {
              call.reader = res.body.getReader({ mode: "byob" });
              call.byob = true;
            } catch {
              call.reader = res.body.getReader();
            }
          }
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
      let read;
      if (call.byob) {
        read = call.reader.read(call.buf || pool.pop() || new Uint8Array(CHUNK));
        call.buf = null; // detached by read(); comes back with the result
      } else {
        read = call.reader.read();
      }
      read.then(
        ({ done, value }) => {
          if (call.byob && value) call.buf = new Uint8Array(value.buffer);
          onChunk(id, done ? null : value, null);
          if (done) release(call);
        },
        (err) => onChunk(id, null, message(err)),
      );
    },
    abort(id) {
      const call = calls.get(id);
      if (!call) return;
      calls.delete(id);
      release(call);
      if (call.reader) call.reader.cancel().catch(() => {});
      call.ac.abort();
    },
  };
}
