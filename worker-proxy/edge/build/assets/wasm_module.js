// The compiled keypool.wasm for main.js where it may not read files (no
// read permission): a source-phase import, so Deno reads and compiles the
// file itself (Deno 2.6 and later). A separate module, so that a Deno
// without this syntax fails only when it is loaded.
import source keypool from "./keypool.wasm";

export default keypool;
