// SPDX-License-Identifier: Apache-2.0
// Prints what agent_daemonset_test.sh needs from rendered manifests, one item per line as
// KEY<TAB>VALUE (a list value: one line per element, the key repeated):
//   agent_cmd, agent_caps, agent_metrics_port, agent_scrape_port, agent_probe, agent_bpffs_mount,
//   agent_cgroup_mount, mount_bpffs_cmd, cleanup_cmd (from the cleanupOnly render), control_cmd,
//   control_probe, control_service_grpc_port.
// A probe is "KIND PATH PORT" (startupProbe /healthz 9464), its named port resolved to the
// container's port number; every probe must be an httpGet, so the test can ask it.
// Usage: manifest_commands.cjs RENDERED.yaml CLEANUP_RENDERED.yaml
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");
const YAML = createRequire(path.join(process.env.SOCKMESH_DEPLOY_TOOLS, "package.json"))("yaml");

function objects(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);
}
function find(objs, kind, name) {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
}
function container(list, name) {
  const c = (list || []).find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name}`);
  return c;
}
function emit(key, value) {
  for (const v of [].concat(value)) {
    if (String(v).includes("\n")) throw new Error(`${key}: value with a newline`);
    console.log(`${key}\t${v}`);
  }
}

// The container's probes as "KIND PATH PORT".
function probes(c) {
  return ["startupProbe", "livenessProbe", "readinessProbe"].map((kind) => {
    const get = (c[kind] || {}).httpGet;
    if (!get) throw new Error(`container ${c.name}: ${kind} is not an httpGet probe`);
    const port =
      typeof get.port === "number" ? get.port : c.ports.find((p) => p.name === get.port).containerPort;
    return `${kind} ${get.path} ${port}`;
  });
}

const [rendered, cleanupRendered] = process.argv.slice(2);
const objs = objects(rendered);
const ds = find(objs, "DaemonSet", "sockmesh-agent");
const pod = ds.spec.template.spec;
const agent = container(pod.containers, "agent");
emit("agent_cmd", [...agent.command, ...(agent.args || [])]);
emit("agent_caps", agent.securityContext.capabilities.add);
emit("agent_metrics_port", agent.ports.find((p) => p.name === "metrics").containerPort);
emit("agent_scrape_port", ds.spec.template.metadata.annotations["prometheus.io/port"]);
emit("agent_probe", probes(agent));
const mountOf = (c, volume) => c.volumeMounts.find((m) => m.name === volume).mountPath;
emit("agent_bpffs_mount", mountOf(agent, "bpffs"));
emit("agent_cgroup_mount", mountOf(agent, "cgroup2"));
emit("mount_bpffs_cmd", container(pod.initContainers, "mount-bpffs").command);

const cleanupPod = find(objects(cleanupRendered), "DaemonSet", "sockmesh-agent").spec.template.spec;
emit("cleanup_cmd", container(cleanupPod.initContainers, "cleanup").command);

const deploy = find(objs, "Deployment", "sockmesh-control");
const control = container(deploy.spec.template.spec.containers, "control");
emit("control_cmd", [...control.command, ...(control.args || [])]);
emit("control_user", deploy.spec.template.spec.securityContext.runAsUser);
emit("control_probe", probes(control));
const svc = find(objs, "Service", "sockmesh-control");
emit("control_service_grpc_port", svc.spec.ports.find((p) => p.name === "grpc").port);
