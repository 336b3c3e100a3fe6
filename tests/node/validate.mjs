// validate.mjs - checks bodies against JSON Schema 2020-12 schemas (ajv), for tests/test_ops.py
//
//   node validate.mjs INPUT.json
//
// INPUT is {"document": the OpenAPI document as JSON, "samples": [{"id",
// "schema", "body"}, ...]}; a schema's "$ref"s name the document as
// "openapi.json#/components/...". Prints [{"id", "errors": [...]}, ...]: one
// entry per sample that does not validate (an empty list when all do).
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// strict: false lets OpenAPI's own keywords (example, ...) pass, as the
// OpenAPI 3.1 dialect allows; every JSON Schema keyword is still applied.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(input.document, 'openapi.json', undefined, false);
const failures = [];
for (const sample of input.samples) {
  const validate = ajv.compile(sample.schema);
  if (!validate(sample.body))
    failures.push({
      id: sample.id,
      errors: validate.errors.map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`),
    });
}
process.stdout.write(JSON.stringify(failures) + '\n');
