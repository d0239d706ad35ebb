// The JavaScript half of the edge build's bridge to Go (Go's package
// worker-proxy/edge/bridge): installFetchBridge is the outbound transport
// (bridge.FetchTransport, fetch()), connect serves incoming requests to
// Go's handler (bridge.Export).
//
// Every crossing costs Go's wasm runtime: each JavaScript value Go holds
// gets a finalizer, each call into Go wakes its scheduler. So strings and
// bytes do not cross as values: Go passes the address and length of its
// own bytes (JavaScript reads them from the wasm memory during the call),
// and JavaScript hands data to Go by telling it the sizes, after which Go
// calls take(ptr) to have them copied into a buffer of its own. Calls into
// Go carry numbers only. Headers travel as one "name: value" string.
const enc = new TextEncoder();
const dec = new TextDecoder();
const nullBody = new Set([101, 204, 205, 304]);
// A response whose length is known and at most WHOLE_MAX (and that is not
// an event stream) is read whole and handed to Go with its head, in one
// call; any other body is read chunk by chunk on Go's request.
const WHOLE_MAX = 1 << 20;
// How many bytes of a streamed response may wait in JavaScript for the
// client before Go's Write blocks (backpressure).
const STREAM_QUEUE = 64 << 10;
// A streamed response body is read with a BYOB reader into buffers of
// CHUNK bytes that are reused (per call, then from a pool of up to POOL):
// Go copies each chunk during the call that announces it, so the buffer is
// free again at once, and no chunk is left to a fresh 64 KiB ArrayBuffer
// (Deno's default reader) for the garbage collectors to find. Hosts
// without BYOB readers get the default reader.
const CHUNK = 32 << 10;
const POOL = 64;

// pending holds what the next take(ptr) copies into Go: set right before
// the call into Go that announces its sizes, which takes it at once.
let pending = null;

function wasm(go) {
  const view = (p, n) => new Uint8Array(go._inst.exports.mem.buffer, p, n);
  return {
    view,
    str: (p, n) => (n > 0 ? dec.decode(view(p, n)) : ""),
    bytes: (p, n) => (n > 0 ? view(p, n).slice() : null),
    take(p) {
      if (!pending) return;
      let at = p;
      for (const part of pending) {
        if (!part || part.length === 0) continue;
        view(at, part.length).set(part);
        at += part.length;
      }
      pending = null;
    },
  };
}

const message = (err) => String((err && err.message) || err);

// toHeaders turns "name: value" lines into a header list.
function toHeaders(lines) {
  const h = [];
  for (const line of lines.split("\n")) {
    const i = line.indexOf(": ");
    if (i > 0) h.push([line.slice(0, i), line.slice(i + 2)]);
  }
  return h;
}

// installFetchBridge publishes globalThis.__keypoolFetch for go (a
// wasm_exec.js Go, run after this call).
export function installFetchBridge(go) {
  const m = wasm(go);
  const calls = new Map(); // id → { ac, reader, byob, buf }
  const pool = []; // free CHUNK-byte buffers
  const release = (call) => {
    if (call.buf && pool.length < POOL) pool.push(call.buf);
    call.buf = null;
  };
  let onHead = null, onChunk = null;
  // whole reports whether res's body is to be read in one piece.
  const whole = (res) => {
    const n = Number(res.headers.get("content-length") ?? -1);
    if (!(n >= 0 && n <= WHOLE_MAX)) return false;
    return !(res.headers.get("content-type") ?? "").startsWith("text/event-stream");
  };
  // head tells Go about the response head (and whole body); flags: 0 the
  // body follows on read, 1 this is all of it, 2 failed (the message).
  const head = (id, status, text, body, flags) => {
    const t = enc.encode(text);
    pending = [t, body];
    onHead(id, status, t.length, body ? body.length : 0, flags);
  };
  const chunk = (id, data, flags) => {
    pending = [data];
    onChunk(id, data ? data.length : 0, flags);
  };
  globalThis.__keypoolFetch = {
    init(h, c) {
      onHead = h;
      onChunk = c;
    },
    take: m.take,
    // start fetches; meta is "method\nurl\nheader lines".
    start(id, mp, mn, bp, bn) {
      const meta = m.str(mp, mn);
      const body = m.bytes(bp, bn);
      const a = meta.indexOf("\n"), b = meta.indexOf("\n", a + 1);
      const headers = toHeaders(meta.slice(b + 1)); // pairs: cheaper than Headers.append
      const call = { ac: new AbortController(), reader: null, byob: false, buf: null };
      calls.set(id, call);
      const failed = (err) => {
        if (calls.get(id) !== call) return; // aborted by Go
        calls.delete(id);
        head(id, 0, message(err), null, 2);
      };
      const init = { method: meta.slice(0, a), headers, body: body ?? undefined, signal: call.ac.signal };
      let sent;
      try {
        sent = globalThis.fetch(meta.slice(a + 1, b), init);
      } catch (err) {
        sent = Promise.reject(err); // never throw into Go, which called this
      }
      sent.then(
        (res) => {
          let h = "";
          for (const [k, v] of res.headers) h += k + ": " + v + "\n";
          if (!res.body || whole(res)) {
            const got = res.body ? res.arrayBuffer() : Promise.resolve(null);
            return got.then((buf) => {
              if (calls.get(id) !== call) return;
              calls.delete(id);
              head(id, res.status, h, buf ? new Uint8Array(buf) : null, 1);
            }, failed);
          }
          try {
            call.reader = res.body.getReader({ mode: "byob" });
            call.byob = true;
          } catch {
            call.reader = res.body.getReader();
          }
          head(id, res.status, h, null, 0);
        },
        failed,
      );
    },
    // read hands Go the next chunk; flags: 0 data, 1 end, 2 failed.
    read(id) {
      const call = calls.get(id);
      if (!call || !call.reader) {
        chunk(id, null, 1);
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
          if (calls.get(id) !== call) return; // aborted by Go
          if (done) calls.delete(id);
          chunk(id, done ? null : value, done ? 1 : 0); // Go copies it now
          if (done) release(call);
        },
        (err) => {
          if (calls.get(id) !== call) return;
          calls.delete(id);
          release(call);
          chunk(id, enc.encode(message(err)), 2);
        },
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

// connect hands api (what Go's bridge.Export published) the functions Go
// answers through, and returns serve(req, remote, signal): the Response
// to req from Go's handler. remote is the client's "host:port" ("" if not
// known); signal, if given, aborts when the client hangs up before the
// response starts (after it, the body stream is cancelled).
export function connect(go, api) {
  const m = wasm(go);
  const goHandle = api.handle, goDrain = api.drain, goCancel = api.cancel;
  const waiting = new Map(); // id → resolve(Response)
  const streams = new Map(); // id → { c, full }
  api.init({
    take: m.take,
    // respond answers request id: with the whole body, or (stream) with
    // a body Go pushes.
    // Nothing here may throw: Go called it, and an exception would panic
    // Go outside any handler's recovery.
    respond(id, status, hp, hn, bp, bn, stream) {
      const resolve = waiting.get(id);
      if (!resolve) return;
      waiting.delete(id);
      try {
        resolve(answer(id, status, m.str(hp, hn), bp, bn, stream));
      } catch (err) {
        // Headers JavaScript refuses (a value outside Latin-1, say).
        streams.delete(id);
        resolve(new Response("the proxy's answer could not be sent: " + message(err) + "\n", {
          status: 502,
          headers: { "content-type": "text/plain; charset=utf-8" },
        }));
      }
    },
    // push queues a chunk of stream id (n < 0: the end). It returns 1 when
    // Go may go on, 0 when it is to wait for drain(id), -1 when the client
    // is gone.
    push(id, p, n) {
      const s = streams.get(id);
      if (!s) return -1;
      try {
        if (n < 0) {
          streams.delete(id);
          s.c.close();
          return 1;
        }
        s.c.enqueue(m.view(p, n).slice());
      } catch {
        streams.delete(id); // the stream was errored or closed
        return -1;
      }
      if (s.c.desiredSize > 0) return 1;
      s.full = true;
      return 0;
    },
  });
  // answer is the Response to request id: with the whole body, or (stream)
  // with a body Go pushes.
  function answer(id, status, head, bp, bn, stream) {
    const init = { status, headers: toHeaders(head) };
    if (!stream || nullBody.has(status)) {
      // A status without a body that Go still streams to: its pushes find
      // no stream and fail (the client got its answer).
      return new Response(nullBody.has(status) ? null : m.bytes(bp, bn), init);
    }
    const s = { c: null, full: false };
    streams.set(id, s);
    const body = new ReadableStream({
      start(c) {
        s.c = c;
      },
      pull() {
        if (s.full) {
          s.full = false;
          goDrain(id);
        }
      },
      cancel() {
        if (streams.delete(id)) goCancel(id);
      },
    }, { highWaterMark: STREAM_QUEUE, size: (chunk) => chunk.byteLength });
    return new Response(body, init);
  }
  let seq = 0;
  return async function serve(req, remote, signal) {
    const id = seq = (seq % 2147483647) + 1;
    let meta = req.method + "\n" + req.url + "\n" + remote + "\n";
    for (const [k, v] of req.headers) meta += k + ": " + v + "\n";
    const body = req.body ? new Uint8Array(await req.arrayBuffer()) : null;
    const res = new Promise((resolve) => waiting.set(id, resolve));
    const abort = () => goCancel(id);
    signal?.addEventListener("abort", abort);
    const t = enc.encode(meta);
    pending = [t, body];
    goHandle(id, t.length, body ? body.length : 0);
    const r = await res;
    signal?.removeEventListener("abort", abort);
    return r;
  };
}
