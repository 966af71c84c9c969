// Runs a list of calls through the `convex` npm package's ConvexHttpClient, as a client
// written for the original Stage would, and prints what each answered as one JSON object.
//
//   node convex_client.mjs URL PROGRAM.json NAME=KEY...
//
// PROGRAM is a list of steps `{ "as": "name", "call": "query"|"mutation"|"action",
// "fn": "stage:writeFile", "args": {…}, "client": "NAME" }` (client defaults to the first).
// In `args`, the string "@step" stands for the value step `step` answered and "@step.field"
// for one of its fields; {"$bigint": "5"} is a BigInt and {"$bytes": base64} an ArrayBuffer.
// Each answer is written back the same way: `{"value": …}`, or `{"error": {"class":
// "ConvexError"|"Error", "message", "data"?}}`, keyed by the step's name.

import { readFileSync } from "node:fs";
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { ConvexError } from "convex/values";

const [url, programFile, ...keys] = process.argv.slice(2);
const clients = new Map();
for (const pair of keys) {
    const [name, key] = [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)];
    const client = new ConvexHttpClient(url, { logger: false });
    client.setAdminAuth(key);
    clients.set(name, client);
}
const program = JSON.parse(readFileSync(programFile, "utf8"));
const answers = {};

function reference(path) {
    const [step, ...fields] = path.split(".");
    let value = answers[step]?.value;
    for (const field of fields) value = value?.[field];
    if (value === undefined) throw new Error(`nothing at @${path}`);
    return value;
}

// A step's arguments as client values: "@step" references resolved, markers decoded.
function toClient(value, references = true) {
    if (references && typeof value === "string" && value.startsWith("@")) {
        return toClient(reference(value.slice(1)), false);
    }
    if (Array.isArray(value)) return value.map((item) => toClient(item, references));
    if (value && typeof value === "object") {
        const keys = Object.keys(value);
        if (keys.length === 1 && keys[0] === "$bigint") return BigInt(value.$bigint);
        if (keys.length === 1 && keys[0] === "$bytes") {
            return new Uint8Array(Buffer.from(value.$bytes, "base64")).buffer;
        }
        return Object.fromEntries(keys.map((k) => [k, toClient(value[k], references)]));
    }
    return value;
}

// A client value as JSON, with the markers `toClient` reads.
function encode(value) {
    if (typeof value === "bigint") return { $bigint: value.toString() };
    if (value instanceof ArrayBuffer) return { $bytes: Buffer.from(value).toString("base64") };
    if (value === undefined) return { $undefined: true };
    if (Array.isArray(value)) return value.map(encode);
    if (value && typeof value === "object") {
        return Object.fromEntries(Object.keys(value).map((k) => [k, encode(value[k])]));
    }
    return value;
}

for (const step of program) {
    const client = clients.get(step.client ?? keys[0].slice(0, keys[0].indexOf("=")));
    const [module, name] = step.fn.split(":");
    try {
        const value = await client[step.call](anyApi[module][name], toClient(step.args ?? {}));
        answers[step.as] = { value: encode(value) };
    } catch (error) {
        const answer = { class: error instanceof ConvexError ? "ConvexError" : error.constructor.name, message: error.message };
        if (error instanceof ConvexError) answer.data = encode(error.data);
        answers[step.as] = { error: answer };
    }
}
console.log(JSON.stringify(answers));
