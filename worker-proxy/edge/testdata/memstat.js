// memstat runs the entry script named by MEMSTAT_ENTRY (an absolute path)
// and, on SIGUSR2, prints one line "memstat {json}" to stderr: Deno's
// memoryUsage() and the size of each V8 heap space, in bytes, and for a Go
// entry (wasm_exec.js beside it) how many JavaScript values Go holds
// references to (goValues: each stays alive until Go's garbage collector
// finalizes its js.Value) and the size of its linear memory (goMemory). Used by BenchmarkEdgeMemory to tell which part
// of the process grows.
import v8 from "node:v8";

const entry = new URL(Deno.env.get("MEMSTAT_ENTRY"), "file:///");
let go = null;
try {
  await import(new URL("wasm_exec.js", entry).href);
  const Go = globalThis.Go;
  globalThis.Go = class extends Go {
    constructor() {
      super();
      go = this;
    }
  };
} catch { /* not a Go entry */ }

Deno.addSignalListener("SIGUSR2", () => {
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.space_size;
  const goValues = go?._values ? go._values.length - go._idPool.length : 0;
  const goMemory = go?._inst ? go._inst.exports.mem.buffer.byteLength : 0;
  console.error("memstat " + JSON.stringify({ ...Deno.memoryUsage(), spaces, goValues, goMemory }));
});
await import(entry.href);
