// The generator of test-e2e/kube/go.mod's staging replace block: pure parts on fixed text, and the
// committed go.mod checked against the upstream go.mod of the version it requires.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BEGIN, END, replaceBlock, requiredKubernetesVersion, stagingModules, stagingVersion, withReplaceBlock } from './go-mod-replace.ts';

// Shaped like k8s.io/kubernetes's go.mod: a replace block with staging and non-staging lines.
const UPSTREAM = `module k8s.io/kubernetes

go 1.24.0

require (
\tk8s.io/api v0.0.0
\tk8s.io/klog/v2 v2.130.1
)

replace (
\tk8s.io/apimachinery => ./staging/src/k8s.io/apimachinery
\tk8s.io/api => ./staging/src/k8s.io/api // a comment
\tgithub.com/some/fork => github.com/other/fork v1.2.3
)

replace k8s.io/kubelet => ./staging/src/k8s.io/kubelet
`;

test('stagingModules lists only ./staging/src replacements, sorted, from blocks and single lines', () => {
  assert.deepEqual(stagingModules(UPSTREAM), ['k8s.io/api', 'k8s.io/apimachinery', 'k8s.io/kubelet']);
});

test('stagingModules refuses a go.mod without staging replacements', () => {
  assert.throws(() => stagingModules('module x\n\nrequire k8s.io/api v0.34.4\n'), /no \.\/staging\/src replace lines/);
});

test('stagingVersion maps v1.X.Y to v0.X.Y and refuses anything else', () => {
  assert.equal(stagingVersion('v1.34.4'), 'v0.34.4');
  assert.equal(stagingVersion('v1.35.0-rc.1'), 'v0.35.0-rc.1');
  for (const bad of ['v2.0.0', '1.34.4', 'v1.34', 'v1.34.4 ']) assert.throws(() => stagingVersion(bad), /not a k8s.io\/kubernetes/);
});

test('replaceBlock is byte-exact', () => {
  assert.equal(
    replaceBlock(UPSTREAM, 'v1.34.4'),
    `${BEGIN}\nreplace (\n\tk8s.io/api => k8s.io/api v0.34.4\n\tk8s.io/apimachinery => k8s.io/apimachinery v0.34.4\n\tk8s.io/kubelet => k8s.io/kubelet v0.34.4\n)\n\n${END}`,
  );
});

test('withReplaceBlock appends once, then replaces in place', () => {
  const ours = 'module pier.test/kube\n\nrequire k8s.io/kubernetes v1.34.4\n';
  assert.equal(requiredKubernetesVersion(ours), 'v1.34.4');
  const once = withReplaceBlock(ours, replaceBlock(UPSTREAM, 'v1.34.4'));
  assert.ok(once.startsWith(ours.trimEnd()));
  const again = withReplaceBlock(`${once}\ntool k8s.io/kubernetes/cmd/kubelet\n`, replaceBlock(UPSTREAM, 'v1.35.4'));
  assert.match(again, /k8s\.io\/api => k8s\.io\/api v0\.35\.4/);
  assert.doesNotMatch(again, /v0\.34\.4/);
  assert.equal(again.split(BEGIN).length, 2);
  assert.match(again, /\ntool k8s\.io\/kubernetes\/cmd\/kubelet\n$/);
});

test('the committed go.mod has the block generated from its k8s.io/kubernetes go.mod', () => {
  const script = fileURLToPath(new URL('./go-mod-replace.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
