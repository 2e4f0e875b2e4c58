// SPDX-License-Identifier: Apache-2.0
// Offline checks of deploy/, run by ctest (tests/deploy/CMakeLists.txt) with the packages that
// setup_tools.sh installed into $SOCKMESH_DEPLOY_TOOLS:
//   manifests CRD_DIR FILE...  every object validates against the Kubernetes OpenAPI schemas
//                              (kubernetes-models; CRDs included, and structural), custom
//                              resources against their CRD's openAPIV3Schema (ajv); plus the
//                              API server's rules that no schema expresses and the chart's own
//                              consistency rules (scrape port = --metrics-addr = containerPort)
//   accept CRD_DIR CTL FILE... the valid examples: schemas and `sockmeshctl validate` accept
//                              them, and every CRD has one
//   reject CRD_DIR CTL FILE... the invalid examples: schemas and `sockmeshctl validate` reject
//                              each, naming its "# expect-field:"
//   dashboard JSON ROOT PENDING  the Grafana dashboard parses and every metric it queries exists
// Exits 1 with one line per problem, naming file, object and field.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const tools = process.env.SOCKMESH_DEPLOY_TOOLS;
if (!tools) {
  console.error("check_deploy: SOCKMESH_DEPLOY_TOOLS is not set (tests/deploy/setup_tools.sh)");
  process.exit(2);
}
const toolRequire = createRequire(path.join(tools, "package.json"));
const YAML = toolRequire("yaml");

const problems = [];
function problem(where, message) {
  problems.push(`${where}: ${message}`);
}

function loadDocuments(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  const out = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0) {
      problem(`${file}: document ${i + 1}`, doc.errors.map((e) => e.message).join("; "));
      return;
    }
    const obj = doc.toJS();
    if (obj !== null && obj !== undefined) out.push(obj);
  });
  return out;
}

function describe(file, obj) {
  const ns = obj.metadata && obj.metadata.namespace ? `${obj.metadata.namespace}/` : "";
  const name = obj.metadata ? obj.metadata.name : "?";
  return `${path.basename(file)}: ${obj.kind} ${ns}${name}`;
}

// kubernetes-models module of an apiVersion: "v1" -> kubernetes-models/v1,
// "apps/v1" -> kubernetes-models/apps/v1.
function modelClass(apiVersion, kind) {
  try {
    return toolRequire(`kubernetes-models/${apiVersion}`)[kind];
  } catch (e) {
    return undefined;
  }
}

// Kinds of other projects that the chart may render (optional features); their operators'
// schemas are not in kubernetes-models, so their required structure is checked here by hand.
const foreignKinds = {
  "monitoring.coreos.com/v1/ServiceMonitor": (where, obj) => {
    const spec = obj.spec || {};
    if (!spec.selector) problem(where, "spec.selector: required");
    if (!Array.isArray(spec.endpoints) || spec.endpoints.length === 0) {
      problem(where, "spec.endpoints: at least one endpoint required");
    }
  },
};

function podSpecOf(obj) {
  const spec = obj.spec || {};
  if (obj.kind === "Pod") return spec;
  if (obj.kind === "CronJob") return spec.jobTemplate.spec.template.spec;
  return spec.template ? spec.template.spec : undefined;
}

function hasCap(container, cap) {
  const sc = container.securityContext || {};
  const add = (sc.capabilities && sc.capabilities.add) || [];
  return add.includes(cap) || add.includes(`CAP_${cap}`);
}

// Rules of the API server's validation (pkg/apis/core/validation) that the OpenAPI schemas do
// not carry, for the fields this chart uses, and the chart's own cross-field rules.
function checkPodSpec(where, obj, podSpec) {
  const volumes = new Set((podSpec.volumes || []).map((v) => v.name));
  const all = [
    ...(podSpec.initContainers || []).map((c) => ["initContainers", c]),
    ...(podSpec.containers || []).map((c) => ["containers", c]),
  ];
  for (const [list, c] of all) {
    const at = `${where}: spec.template.spec.${list}[${c.name}]`;
    const sc = c.securityContext || {};
    for (const m of c.volumeMounts || []) {
      if (!volumes.has(m.name)) problem(at, `volumeMounts: "${m.name}" is not a volume of the Pod`);
      if (m.mountPropagation === "Bidirectional" && sc.privileged !== true) {
        problem(at, `volumeMounts[${m.name}].mountPropagation: Bidirectional requires privileged`);
      }
    }
    if (sc.allowPrivilegeEscalation === false && (sc.privileged || hasCap(c, "SYS_ADMIN"))) {
      problem(at, "securityContext.allowPrivilegeEscalation: false excludes privileged and SYS_ADMIN");
    }
    const portNames = new Set((c.ports || []).map((p) => p.name).filter(Boolean));
    for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
      const p = c[probe];
      if (!p) continue;
      const handler = p.httpGet || p.tcpSocket || p.grpc;
      if (handler && typeof handler.port === "string" && !portNames.has(handler.port)) {
        problem(at, `${probe}: port "${handler.port}" is not a named port of the container`);
      }
    }
    if (list === "containers") checkScrapeAnnotations(at, obj, c);
  }
}

// prometheus.io/port must be a port the container serves (its --metrics-addr).
function checkScrapeAnnotations(at, obj, c) {
  const annotations = (obj.spec.template.metadata || {}).annotations || {};
  if (annotations["prometheus.io/scrape"] !== "true") return;
  const labels = (obj.spec.template.metadata || {}).labels || {};
  if (labels["app.kubernetes.io/part-of"] !== "sockmesh") {
    problem(at, "scraped Pods need the label app.kubernetes.io/part-of: sockmesh " +
                "(deploy/monitoring/prometheus-scrape.yaml keeps Pods by it)");
  }
  const port = Number(annotations["prometheus.io/port"]);
  const args = [...(c.command || []), ...(c.args || [])];
  const flag = args.find((a) => a.startsWith("--metrics-addr="));
  if (!flag) return problem(at, "prometheus.io/scrape is set but the command has no --metrics-addr=");
  const flagPort = Number(flag.slice(flag.lastIndexOf(":") + 1));
  if (flagPort !== port) {
    problem(at, `prometheus.io/port ${port} differs from ${flag}`);
  }
  if (!(c.ports || []).some((p) => p.containerPort === port)) {
    problem(at, `prometheus.io/port ${port} is not a containerPort`);
  }
}

function checkManifests(crdDir, files) {
  const crds = loadCrds(crdDir);
  const ajv = newAjv();
  let count = 0;
  for (const file of files) {
    for (const obj of loadDocuments(file)) {
      count++;
      const where = describe(file, obj);
      const foreign = foreignKinds[`${obj.apiVersion}/${obj.kind}`];
      if (foreign) {
        foreign(where, obj);
        continue;
      }
      const fields = schemaErrorFields(obj, crds, ajv);
      if (fields.length > 0) problem(where, `schema rejects ${fields.join(", ")}`);
      if (obj.kind === "CustomResourceDefinition") checkCrd(where, obj);
      const podSpec = podSpecOf(obj);
      if (podSpec) checkPodSpec(where, obj, podSpec);
    }
  }
  if (count === 0) problem(files.join(" "), "no objects");
  return `${count} objects`;
}

// The API server accepts only structural schemas
// (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
// every node has a type, properties and additionalProperties exclude each other, and the value
// validations inside allOf/anyOf/oneOf/not carry no type, description, default,
// additionalProperties or nullable. JSON Schema validators do not know these rules.
function checkStructural(where, schema, at, inValueValidation) {
  if (!schema || typeof schema !== "object") return;
  const forbidden = ["type", "description", "default", "additionalProperties", "nullable"];
  if (inValueValidation) {
    for (const k of forbidden) {
      if (k in schema) problem(where, `${at}: "${k}" is not allowed inside allOf/anyOf/oneOf/not`);
    }
  } else if (!schema.type && !schema["x-kubernetes-int-or-string"] &&
             !schema["x-kubernetes-preserve-unknown-fields"]) {
    problem(where, `${at}: no type (structural schemas need one on every node)`);
  }
  if (schema.properties && schema.additionalProperties !== undefined) {
    problem(where, `${at}: properties and additionalProperties exclude each other`);
  }
  for (const [k, v] of Object.entries(schema.properties || {})) {
    checkStructural(where, v, `${at}.${k}`, inValueValidation);
  }
  if (schema.items) checkStructural(where, schema.items, `${at}[]`, inValueValidation);
  if (typeof schema.additionalProperties === "object") {
    checkStructural(where, schema.additionalProperties, `${at}.*`, inValueValidation);
  }
  for (const k of ["allOf", "anyOf", "oneOf"]) {
    for (const [i, v] of (schema[k] || []).entries()) checkStructural(where, v, `${at}.${k}[${i}]`, true);
  }
  if (schema.not) checkStructural(where, schema.not, `${at}.not`, true);
}

function checkCrd(where, crd) {
  const spec = crd.spec || {};
  for (const v of spec.versions || []) {
    const at = `${where}: spec.versions[${v.name}]`;
    if (!v.schema || !v.schema.openAPIV3Schema) problem(at, "no openAPIV3Schema");
    else checkStructural(at, v.schema.openAPIV3Schema, "openAPIV3Schema", false);
    if (!v.subresources || !v.subresources.status) problem(at, "no status subresource");
    if (!v.additionalPrinterColumns || v.additionalPrinterColumns.length === 0) {
      problem(at, "no additionalPrinterColumns");
    }
  }
}

function loadCrds(dir) {
  const crds = new Map();  // "group/version/Kind" -> {schema, file, examples}
  for (const f of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const crd of loadDocuments(path.join(dir, f))) {
      for (const v of crd.spec.versions) {
        crds.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, {
          schema: v.schema.openAPIV3Schema,
          file: f,
          examples: 0,
        });
      }
    }
  }
  return crds;
}

// Source files that define metric names: a dashboard query naming a metric no file defines shows
// an empty panel.
function metricNamesInSources(root) {
  const names = new Set();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cc|h)$/.test(e.name)) {
        for (const m of fs.readFileSync(p, "utf8").matchAll(/"(sockmesh_[a-z0-9_]+)"/g)) {
          names.add(m[1]);
        }
      }
    }
  };
  for (const d of ["userspace", "control_plane", "services"]) {
    if (fs.existsSync(path.join(root, d))) walk(path.join(root, d));
  }
  return names;
}

function checkDashboard(file, sourceRoot, pendingFile) {
  const dash = JSON.parse(fs.readFileSync(file, "utf8"));
  const panels = dash.panels || [];
  if (panels.length === 0) problem(file, "no panels");
  const defined = metricNamesInSources(sourceRoot);
  // Metrics that the kernel-metrics issue adds; listed so that the day they exist this check
  // fails until the list is emptied and the names are confirmed.
  const pending = new Set(
    fs.readFileSync(pendingFile, "utf8").split("\n").map((l) => l.replace(/#.*/, "").trim())
      .filter(Boolean));
  let queries = 0;
  for (const panel of panels) {
    for (const t of panel.targets || []) {
      queries++;
      for (const m of t.expr.matchAll(/\b(sockmesh_[a-z0-9_]+)/g)) {
        const base = m[1].replace(/_(bucket|sum|count)$/, "");
        const known = defined.has(m[1]) || defined.has(base);
        if (pending.has(base)) {
          if (known) problem(file, `${base} now exists in the sources: remove it from ${pendingFile}`);
        } else if (!known) {
          problem(file, `panel "${panel.title}": metric ${m[1]} is not defined in the sources`);
        }
      }
    }
  }
  return `${panels.length} panels, ${queries} queries`;
}

// "/spec/ports/0/port" -> "spec.ports[0].port", the parser's spelling of a field.
function fieldOfPointer(pointer) {
  let out = "";
  for (const part of pointer.split("/").filter(Boolean)) {
    out += /^[0-9]+$/.test(part) ? `[${part}]` : (out ? "." : "") + part;
  }
  return out;
}

// The fields a schema rejects in one object: [] when it is valid.
function schemaErrorFields(obj, crds, ajv) {
  const crd = crds.get(`${obj.apiVersion}/${obj.kind}`);
  if (crd) {
    const validate = ajv.compile(crd.schema);
    if (validate(obj)) return [];
    return validate.errors.map((e) => {
      const f = fieldOfPointer(e.instancePath);
      if (e.keyword !== "required") return f;
      return f ? `${f}.${e.params.missingProperty}` : e.params.missingProperty;
    });
  }
  const Model = modelClass(obj.apiVersion, obj.kind);
  if (!Model) return [`(no schema for ${obj.apiVersion} ${obj.kind})`];
  try {
    new Model(obj).validate();
    return [];
  } catch (e) {
    // kubernetes-models' message: "data/spec/ports/0/port must be integer, data must have
    // required property 'addressType'".
    const fields = [];
    for (const m of e.message.matchAll(/data((?:\/[^\s,]+)*) must have required property '?([^',\s]+)'?/g)) {
      const f = fieldOfPointer(m[1]);
      fields.push(f ? `${f}.${m[2]}` : m[2]);
    }
    for (const m of e.message.matchAll(/data((?:\/[^\s,]+)+) (?!must have required)/g)) {
      fields.push(fieldOfPointer(m[1]));
    }
    return fields.length > 0 ? fields : [`(unparsed: ${e.message})`];
  }
}

// strict: false lets the Kubernetes extensions (x-kubernetes-*) through; every other keyword is
// standard JSON Schema. The formats are those Kubernetes checks in the CRDs here; int32/int64
// only size an integer.
function newAjv() {
  const Ajv = toolRequire("ajv");
  const ajv = new Ajv({ allErrors: true, strict: false });
  toolRequire("ajv-formats")(ajv, ["ipv4", "ipv6"]);
  for (const f of ["int32", "int64"]) ajv.addFormat(f, { type: "number", validate: Number.isInteger });
  return ajv;
}

function runValidate(sockmeshctl, file) {
  const { spawnSync } = require("child_process");
  const r = spawnSync(sockmeshctl, ["validate", "-f", file, "-o", "text"], { encoding: "utf8" });
  if (r.error) throw new Error(`${sockmeshctl}: ${r.error.message}`);
  const status = r.status === null ? `killed by ${r.signal}` : r.status;
  return { status, output: `${r.stdout}${r.stderr}` };
}

// Kinds the parser skips ("ignored ... standalone mode reads only ...") cannot be compared; a
// build without a kind's parser says so in the output rather than passing silently.
function parserIgnores(output, obj) {
  return output.includes(`ignored ${obj.apiVersion} ${obj.kind}`);
}

// Every valid example: the schemas and the control plane's parser (sockmeshctl validate) accept it.
function checkAccepted(crdDir, sockmeshctl, files) {
  const crds = loadCrds(crdDir);
  const ajv = newAjv();
  let count = 0;
  for (const file of files) {
    for (const obj of loadDocuments(file)) {
      count++;
      const fields = schemaErrorFields(obj, crds, ajv);
      if (fields.length > 0) problem(describe(file, obj), `schema rejects ${fields.join(", ")}`);
      const crd = crds.get(`${obj.apiVersion}/${obj.kind}`);
      if (crd) crd.examples++;
    }
    const v = runValidate(sockmeshctl, file);
    if (v.status !== 0) problem(file, `sockmeshctl validate exits ${v.status}: ${v.output.trim()}`);
    for (const obj of loadDocuments(file)) {
      if (crds.has(`${obj.apiVersion}/${obj.kind}`) && parserIgnores(v.output, obj)) {
        console.log(`NOTE ${describe(file, obj)}: this build's parser does not read ${obj.kind} ` +
                    "yet; checked against its CRD only");
      }
    }
  }
  for (const [key, crd] of crds) {
    if (crd.examples === 0) problem(crd.file, `${key}: no example object`);
  }
  return `${count} objects accepted by schema and parser`;
}

// Every invalid example (one object, "# expect-field: F"): the schema rejects F (or the object
// holding F, for rules across fields) and the parser rejects it naming F.
function checkRejected(crdDir, sockmeshctl, files) {
  const crds = loadCrds(crdDir);
  const ajv = newAjv();
  for (const file of files) {
    const m = fs.readFileSync(file, "utf8").match(/^# expect-field: (\S+)$/m);
    if (!m) {
      problem(file, "no '# expect-field: FIELD' line");
      continue;
    }
    const field = m[1];
    const [obj] = loadDocuments(file);
    const where = describe(file, obj);
    const fields = schemaErrorFields(obj, crds, ajv);
    const named = fields.some((f) => f === field || field.startsWith(`${f}.`) ||
                                     (f === "" && field.startsWith("spec")));
    if (fields.length === 0) problem(where, `schema accepts it (expected ${field} rejected)`);
    else if (!named) problem(where, `schema rejects ${fields.join(", ")}, not ${field}`);
    const v = runValidate(sockmeshctl, file);
    if (parserIgnores(v.output, obj)) {
      console.log(`NOTE ${where}: this build's parser does not read ${obj.kind} yet; ` +
                  `schema rejects ${fields.join(", ")}`);
      continue;
    }
    if (v.status !== 1) problem(where, `sockmeshctl validate exits ${v.status}, expected 1`);
    if (!v.output.includes(`${field}:`)) {
      problem(where, `sockmeshctl validate does not name ${field}: ${v.output.trim()}`);
    }
  }
  return `${files.length} invalid objects rejected by schema and parser`;
}

function main() {
  const [cmd, ...args] = process.argv.slice(2);
  let summary;
  if (cmd === "manifests") summary = checkManifests(args[0], args.slice(1));
  else if (cmd === "dashboard") summary = checkDashboard(args[0], args[1], args[2]);
  else if (cmd === "accept") summary = checkAccepted(args[0], args[1], args.slice(2));
  else if (cmd === "reject") summary = checkRejected(args[0], args[1], args.slice(2));
  else {
    console.error("usage: check_deploy.cjs manifests CRD_DIR FILE... | " +
                  "dashboard JSON SOURCE_ROOT PENDING_METRICS | accept CRD_DIR SOCKMESHCTL FILE... | " +
                  "reject CRD_DIR SOCKMESHCTL FILE...");
    process.exit(2);
  }
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error(`check_deploy ${cmd}: ${problems.length} problems`);
    process.exit(1);
  }
  console.log(`check_deploy ${cmd}: ok (${summary})`);
}

main();
