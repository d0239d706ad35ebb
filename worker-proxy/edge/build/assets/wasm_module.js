// The compiled keypool.wasm for main.js, through a source-phase import:
// Deno reads and compiles the file itself. A separate module, so that a
// Deno without this syntax fails only here and main.js falls back.
import source keypool from "./keypool.wasm";

export default keypool;
