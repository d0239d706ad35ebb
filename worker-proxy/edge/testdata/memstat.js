// memstat runs the entry script named by MEMSTAT_ENTRY (an absolute path)
// and, on SIGUSR2, prints one line "memstat {json}" to stderr: Deno's
// memoryUsage() and the size of each V8 heap space, in bytes. Used by
// BenchmarkEdgeMemory to tell which part of the process grows.
import v8 from "node:v8";

Deno.addSignalListener("SIGUSR2", () => {
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = s.space_size;
  console.error("memstat " + JSON.stringify({ ...Deno.memoryUsage(), spaces }));
});
await import(new URL(Deno.env.get("MEMSTAT_ENTRY"), "file:///").href);
