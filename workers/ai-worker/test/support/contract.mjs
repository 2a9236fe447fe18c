// The API contract (contract/openapi.yaml, read from disk) as response validators, plus a
// record of which worker operations and statuses the tests exercised.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { parse } from "yaml";
import { REPO_ROOT } from "./servers.mjs";

export const CONTRACT_PATH = join(REPO_ROOT, "contract", "openapi.yaml");
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

export class Contract {
  constructor(path = CONTRACT_PATH) {
    this.doc = parse(readFileSync(path, "utf8"));
    // The whole document is registered so that its "#/components/..." references resolve.
    this.ajv = new Ajv2020({ strict: false, allErrors: true });
    this.ajv.addSchema(this.doc, "contract");
    this.validators = new Map();
    this.exercised = new Set();
  }

  /** Operations carrying `tag`, as [{method, path, statuses}]. */
  operations(tag) {
    const found = [];
    for (const [path, item] of Object.entries(this.doc.paths)) {
      for (const method of METHODS) {
        const operation = item[method];
        if (operation?.tags?.includes(tag)) {
          found.push({ method: method.toUpperCase(), path, statuses: Object.keys(operation.responses) });
        }
      }
    }
    return found;
  }

  /** Validator for a component schema by name, e.g. "CompletionRequest". */
  schema(name) {
    return this.#compile({ $ref: `contract#/components/schemas/${name}` });
  }

  /**
   * Asserts that a response is what the contract allows: a declared status with a JSON body
   * matching its schema. Paths or methods the contract does not declare (404/405 answers) must
   * still carry the contract's Error body. With `record`, counts it for `assertCovered`.
   */
  checkResponse(method, path, status, contentType, body, { record = true } = {}) {
    assert.match(contentType ?? "", /^application\/json\b/, `${method} ${path} → ${status} is not JSON`);
    const operation = this.doc.paths[path]?.[method.toLowerCase()];
    let schema;
    if (operation === undefined) {
      assert.ok(status >= 400, `${method} ${path} is not in the contract but answered ${status}`);
      schema = { $ref: "contract#/components/schemas/Error" };
    } else {
      let response = operation.responses[String(status)];
      assert.ok(response, `${method} ${path} answered ${status}, which the contract does not declare`);
      if (response.$ref) response = this.#resolve(response.$ref);
      schema = this.#localRefs(response.content["application/json"].schema);
      if (record) this.exercised.add(`${method} ${path} ${status}`);
    }
    const validate = this.#compile(schema);
    assert.ok(
      validate(body),
      `${method} ${path} → ${status} body does not match the contract: ` +
        `${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
    );
  }

  /** Asserts that every operation tagged `tag` was exercised with every status it declares. */
  assertCovered(tag) {
    const missing = [];
    for (const { method, path, statuses } of this.operations(tag)) {
      for (const status of statuses) {
        if (!this.exercised.has(`${method} ${path} ${status}`)) missing.push(`${method} ${path} ${status}`);
      }
    }
    assert.deepEqual(missing, [], `contract responses never exercised: ${missing.join(", ")}`);
  }

  #resolve(ref) {
    return ref
      .replace(/^#\//, "")
      .split("/")
      .reduce((node, key) => node[key.replaceAll("~1", "/").replaceAll("~0", "~")], this.doc);
  }

  #localRefs(schema) {
    return JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', '"$ref":"contract#/'));
  }

  #compile(schema) {
    const key = JSON.stringify(schema);
    if (!this.validators.has(key)) this.validators.set(key, this.ajv.compile(schema));
    return this.validators.get(key);
  }
}
