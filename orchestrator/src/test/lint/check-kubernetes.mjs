// Validates every document of Kubernetes manifests against the API's schemas (kubernetes-models,
// generated from the OpenAPI schemas of a Kubernetes release): types, required fields and enums,
// and, as 'kubectl apply --validate=strict' does, no field the API does not have. Prints one line
// per object; exits 1 on any failure.
//   node check-kubernetes.mjs FILE...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// The generated validators check the fields a schema names and skip any other, so a misspelt field
// (updateStrateg:) would pass. Every object is handed to the validator behind a proxy that records
// which of its fields the validator reads: one it never reads is not in the schema.
function track(value, path, objects) {
  if (Array.isArray(value)) {
    return value.map((item, i) => track(item, `${path}/${i}`, objects));
  }
  if (value !== null && typeof value === "object") {
    const entry = { path, keys: Object.keys(value), read: new Set() };
    objects.push(entry);
    const copy = {};
    for (const key of entry.keys) {
      copy[key] = track(value[key], `${path}/${key}`, objects);
    }
    return new Proxy(copy, {
      get(target, key, receiver) {
        if (typeof key === "string") {
          entry.read.add(key);
        }
        return Reflect.get(target, key, receiver);
      },
    });
  }
  return value;
}

let failed = false;
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (document.errors.length > 0) {
      console.log(`FAIL ${file}: ${document.errors.join("; ")}`);
      failed = true;
      continue;
    }
    const object = document.toJS();
    if (object === null) {
      continue;
    }
    const { apiVersion, kind } = object;
    const name = `${kind}/${object.metadata?.name}`;
    // "apps/v1" lives under kubernetes-models/apps/v1, the core "v1" under kubernetes-models/v1.
    let Model;
    try {
      Model = (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind];
    } catch (e) {
      console.log(`FAIL ${file} ${name}: no schema for ${apiVersion} ${kind}`);
      failed = true;
      continue;
    }
    const objects = [];
    try {
      const model = new Model(object);
      model.validate.call(track(model, "", objects));
    } catch (e) {
      console.log(`FAIL ${file} ${name}: ${e.message}`);
      failed = true;
      continue;
    }
    const unknown = objects.flatMap((o) => o.keys.filter((key) => !o.read.has(key)).map((key) => `${o.path}/${key}`))
      .filter((path, _, all) => !all.some((other) => path.startsWith(`${other}/`)));
    if (unknown.length > 0) {
      console.log(`FAIL ${file} ${name}: fields not in the schema: ${unknown.join(", ")}`);
      failed = true;
      continue;
    }
    console.log(`ok   ${file} ${name} (${apiVersion})`);
  }
}
process.exit(failed ? 1 : 0);
