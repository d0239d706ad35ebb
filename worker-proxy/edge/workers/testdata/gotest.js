// Runs a Go test binary compiled for js/wasm inside workerd, in one
// request: POST / with the test flags as a JSON array; the answer is the
// test output followed by "exit=<code>". fetch() calls to the KV REST
// origin are answered from the bindings named like the namespace.
import "./fsbuffer.js";
import "./wasm_exec.js";
import testModule from "./test.wasm";
import { routeFetch } from "./kvrest.js";
import { installFetchBridge } from "./fetch.js";

let env = {};
routeFetch((ns) => env[ns]);

export default {
  async fetch(req, e) {
    env = e;
    globalThis.__testOutput = "";
    const go = new globalThis.Go();
    installFetchBridge(go);
    go.argv = ["test.wasm", ...(await req.json())];
    go.env = { TMPDIR: "/tmp" };
    let code = -1;
    go.exit = (c) => (code = c);
    const instance = await WebAssembly.instantiate(testModule, go.importObject);
    await go.run(instance);
    return new Response(globalThis.__testOutput + "\nexit=" + code + "\n");
  },
};
