// Go's wasm_exec.js writes stdout and stderr through globalThis.fs; this
// one keeps the text in globalThis.__testOutput for gotest.js to return.
// Everything else is "not implemented", as wasm_exec.js's own stub.
const enosys = () => {
  const err = new Error("not implemented");
  err.code = "ENOSYS";
  return err;
};
const decoder = new TextDecoder("utf-8");
globalThis.__testOutput = "";
globalThis.fs = {
  constants: { O_WRONLY: -1, O_RDWR: -1, O_CREAT: -1, O_TRUNC: -1, O_APPEND: -1, O_EXCL: -1, O_DIRECTORY: -1 },
  writeSync(fd, buf) {
    globalThis.__testOutput += decoder.decode(buf);
    return buf.length;
  },
  write(fd, buf, offset, length, position, callback) {
    if (offset !== 0 || length !== buf.length || position !== null) {
      callback(enosys());
      return;
    }
    callback(null, this.writeSync(fd, buf));
  },
};
for (const name of ["chmod", "chown", "close", "fchmod", "fchown", "fstat", "fsync", "ftruncate", "lchown", "link", "lstat", "mkdir", "open", "read", "readdir", "readlink", "rename", "rmdir", "stat", "symlink", "truncate", "unlink", "utimes"]) {
  globalThis.fs[name] = (...args) => args[args.length - 1](enosys());
}
