import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, escapeLabel } from './metrics.ts';

test('counters, gauges and a histogram in the text exposition format', () => {
  const r = new Registry();
  r.declare('pier_agent_watch_restarts_total', 'Watches started again', 'counter');
  r.inc('pier_agent_api_errors_total', 'API calls that failed', { op: 'watch' });
  r.inc('pier_agent_api_errors_total', 'API calls that failed', { op: 'list' }, 2);
  r.inc('pier_agent_api_errors_total', 'API calls that failed', { op: 'watch' });
  r.set('pier_agent_peers', 'Peers', 3);
  r.setAll('pier_agent_routes', 'Routes', [{ labels: { via: 'vxlan', family: 'ipv4' }, value: 2 }, { labels: { family: 'ipv4', via: 'host-gw' }, value: 5 }]);
  for (const v of [0.004, 0.02, 3]) r.observe('pier_agent_reconcile_duration_seconds', 'Pass time', [0.01, 0.1, 1], v);
  assert.equal(r.render(), [
    '# HELP pier_agent_api_errors_total API calls that failed',
    '# TYPE pier_agent_api_errors_total counter',
    'pier_agent_api_errors_total{op="list"} 2',
    'pier_agent_api_errors_total{op="watch"} 2',
    '# HELP pier_agent_peers Peers',
    '# TYPE pier_agent_peers gauge',
    'pier_agent_peers 3',
    '# HELP pier_agent_reconcile_duration_seconds Pass time',
    '# TYPE pier_agent_reconcile_duration_seconds histogram',
    'pier_agent_reconcile_duration_seconds_bucket{le="0.01"} 1',
    'pier_agent_reconcile_duration_seconds_bucket{le="0.1"} 2',
    'pier_agent_reconcile_duration_seconds_bucket{le="1"} 2',
    'pier_agent_reconcile_duration_seconds_bucket{le="+Inf"} 3',
    'pier_agent_reconcile_duration_seconds_sum 3.024',
    'pier_agent_reconcile_duration_seconds_count 3',
    '# HELP pier_agent_routes Routes',
    '# TYPE pier_agent_routes gauge',
    'pier_agent_routes{family="ipv4",via="host-gw"} 5',
    'pier_agent_routes{family="ipv4",via="vxlan"} 2',
    '# HELP pier_agent_watch_restarts_total Watches started again',
    '# TYPE pier_agent_watch_restarts_total counter',
    '',
  ].join('\n'));
  assert.equal(r.value('pier_agent_api_errors_total', { op: 'watch' }), 2);
});

test('label values are escaped; a name keeps its type', () => {
  assert.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const r = new Registry();
  r.set('x', 'x', 1, { node: 'we"ird' });
  assert.match(r.render(), /x\{node="we\\"ird"\} 1/);
  assert.throws(() => r.inc('x', 'x'), /is a gauge, not a counter/);
});
