// Run a script under MicroPython's WebAssembly port (npm: @micropython/micropython-webassembly-pyscript)
// with the tap package in its in-memory file system:
//     node micropython_wasm.mjs <package dir> <script.py> [heap bytes] [board dir]
// A board dir's files (and those of its tap/ folder: compiled .mpy, the table) are copied to the
// file system's root instead of the package, as flash.sh lays out a board.
// Exit 0 when the script ran through, 1 with the Python error's text on stderr when it raised.
import fs from "fs";
import path from "path";

const [packageDir, scriptPath, heapArg, boardDir] = process.argv.slice(2);
const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, "..");
const runtime = path.join(root, ".cache", "node", "node_modules", "@micropython",
                          "micropython-webassembly-pyscript", "micropython.mjs");
const { loadMicroPython } = await import(runtime);
const mp = await loadMicroPython({
    heapsize: heapArg ? parseInt(heapArg, 10) : 1024 * 1024,
    stdout: (line) => process.stdout.write(line + "\n"),
    stderr: (line) => process.stderr.write(line + "\n"),
});
function copyTree(from, to) {
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
        const source = path.join(from, entry.name);
        if (entry.isDirectory()) {
            mp.FS.mkdir(to + entry.name);
            copyTree(source, to + entry.name + "/");
        } else {
            mp.FS.writeFile(to + entry.name, fs.readFileSync(source));
        }
    }
}
if (boardDir) {
    copyTree(boardDir, "/");
} else {
    const name = path.basename(packageDir);
    mp.FS.mkdir("/" + name);
    for (const file of fs.readdirSync(packageDir)) {
        if (file.endsWith(".py") || file.endsWith(".bin")) {
            mp.FS.writeFile("/" + name + "/" + file, fs.readFileSync(path.join(packageDir, file)));
        }
    }
}
try {
    mp.runPython("import sys\nsys.path.insert(0, '/')\n" + fs.readFileSync(scriptPath, "utf8"));
} catch (error) {
    process.stderr.write(String(error.message || error) + "\n");
    process.exit(1);
}
if (boardDir) {
    // This port collects only back at the top level, between scripts (it grows its heap instead):
    // what the script left alive, measured here, is the one heap figure it can give.
    mp.runPython("import gc\ngc.collect()\nprint('LIVE AFTER', gc.mem_alloc())");
}
if (boardDir) {  // what the board wrote (the display's I2C log, the state) back to the folder
    for (const file of mp.FS.readdir("/")) {
        if (file.endsWith(".log") || file.endsWith(".json")) {
            fs.writeFileSync(path.join(boardDir, file), mp.FS.readFile("/" + file));
        }
    }
}
