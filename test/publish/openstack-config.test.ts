import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type OpenStackTargetConfig, parseConfig } from '../../src/config/index.js';
import { isFerryError } from '../../src/errors/index.js';
import { resolveTargets } from '../../src/publish/index.js';
import { glancePlacement } from '../../src/publish/types.js';

const PATH = '/srv/ferry/ferry.yaml';
const PROJECT = '0123456789abcdef0123456789abcdef';

function openstack(text: string): OpenStackTargetConfig {
  const t = parseConfig(text, PATH).targets[0];
  assert.equal(t?.type, 'openstack');
  return t as OpenStackTargetConfig;
}

describe('ferry.yaml openstack targets', () => {
  it('reads every key, with the defaults where keys are absent', () => {
    const t = openstack(
      `streams:
  web: {}
  api: {}
targets:
  lab:
    type: openstack
    cloud: devstack
    regions: [RegionOne, RegionTwo]
    interface: internal
    diskFormat: qcow2
    compress: true
    upload: glance-direct
    stores: [fast, slow]
    visibility: shared
    members: ['${PROJECT}']
    tags: [ferry-built, nightly]
    properties: {hw_qemu_guest_agent: 'yes', os_admin_user: debian}
    retention: {keep: 2}
    streams: [web]
`.replace('os_admin_user', 'admin_user'),
    );
    assert.deepEqual(t, {
      type: 'openstack',
      name: 'lab',
      cloud: { kind: 'named', cloud: 'devstack', overrides: { interface: 'internal' } },
      regions: ['RegionOne', 'RegionTwo'],
      glance: {
        diskFormat: 'qcow2',
        compress: true,
        method: 'glance-direct',
        stores: ['fast', 'slow'],
        visibility: 'shared',
        members: [PROJECT],
        tags: ['ferry-built', 'nightly'],
        properties: { hw_qemu_guest_agent: 'yes', admin_user: 'debian' },
      },
      retention: { keep: 2 },
      streams: ['web'],
    });
    const d = openstack('targets:\n  g:\n    type: openstack\n');
    assert.deepEqual(d.cloud, { kind: 'named', cloud: null, overrides: {} }, 'no cloud: OS_CLOUD');
    assert.equal(d.regions, null);
    assert.deepEqual(d.glance, {
      diskFormat: 'qcow2',
      compress: false,
      method: 'auto',
      stores: [],
      visibility: 'private',
      members: [],
      tags: [],
      properties: {},
    });
    const e = openstack(
      'targets:\n  g:\n    type: openstack\n    endpoint: http://127.0.0.1:9292/\n',
    );
    assert.equal(e.cloud.kind === 'inline' && e.cloud.cloud.authType, 'none');
    const k = openstack(
      'targets:\n  g:\n    type: openstack\n    authType: v3applicationcredential\n    auth: {auth_url: "http://k:5000/v3", application_credential_id: abc, application_credential_secret: s}\n',
    );
    assert.equal(k.cloud.kind === 'inline' && k.cloud.cloud.authType, 'v3applicationcredential');
  });

  it('resolves one placement per region, and one "default" placement when none is named', async () => {
    const config = parseConfig(
      'targets:\n  a:\n    type: openstack\n    endpoint: http://127.0.0.1:1\n  b:\n    type: openstack\n    cloud: c\n    regions: [R1, R2]\n',
      PATH,
    );
    const [a, b] = resolveTargets(config.targets, {});
    assert.equal(a?.method, 'glance');
    assert.deepEqual(
      a?.placements.map((p) => p.key),
      ['a/default'],
    );
    assert.deepEqual(
      b?.placements.map((p) => p.key),
      ['b/R1', 'b/R2'],
    );
    const session = await glancePlacement(a!.placements[0]!).session();
    assert.equal(session.imageUrl, 'http://127.0.0.1:1');
    assert.equal(await session.token(), null);
    assert.equal(session, await glancePlacement(a!.placements[0]!).session(), 'opened once');
  });

  const t = (body: string) => `streams:\n  web: {}\ntargets:\n  t:\n    type: openstack\n${body}`;
  // [file, line, message pattern]
  const BAD: Array<[string, number, RegExp]> = [
    [t('    cloud: a\n    auth: {username: u}\n'), 7, /"auth" does not go with "cloud"/],
    [t('    regions: []\n'), 6, /regions is empty/],
    [t('    regions: [R1, R1]\n'), 6, /names one twice/],
    [t('    regions: ["../x"]\n'), 6, /is not a region name/],
    [t('    endpoint: http://x\n    regions: [a, b]\n'), 7, /one endpoint is one region/],
    [t('    diskFormat: iso\n'), 6, /diskFormat must be one of qcow2, raw, vmdk, vhd, vhdx/],
    [t('    compress: yes please\n'), 6, /compress must be true or false/],
    [t('    diskFormat: raw\n    compress: true\n'), 7, /compress is for diskFormat qcow2 only/],
    [t('    upload: ftp\n'), 6, /upload must be one of auto, put, glance-direct, web-download/],
    [t('    upload: web-download\n'), 6, /needs "webDownload: \{listen: HOST:PORT\}"/],
    [t("    webDownload: {listen: 'h:1'}\n"), 6, /is for upload: web-download only/],
    [t("    upload: web-download\n    webDownload: {listen: 'h'}\n"), 7, /must be HOST:PORT/],
    [t("    upload: web-download\n    webDownload: {listen: 'h:99999'}\n"), 7, /must be HOST:PORT/],
    [
      t("    upload: web-download\n    webDownload: {listen: 'h:1', url: 'http://u@x/'}\n"),
      7,
      /must be an http\(s\) URL/,
    ],
    [t('    visibility: everyone\n'), 6, /visibility must be one of/],
    [t(`    members: ['${PROJECT}']\n`), 6, /needs visibility: shared/],
    [t('    visibility: shared\n    members: [alice]\n'), 7, /is not a project id/],
    [t('    tags: [a, a]\n'), 6, /names a tag twice/],
    [t(`    tags: ['${'x'.repeat(256)}']\n`), 6, /longer than 255/],
    [t("    tags: ['ferry:x']\n"), 6, /ferry: prefix/],
    [t('    properties: {ferry_stream: x}\n'), 6, /set by ferry or Glance itself/],
    [t('    properties: {kernel_id: x}\n'), 6, /set by ferry or Glance itself/],
    [t('    properties: {visibility: x}\n'), 6, /set by ferry or Glance itself/],
    [t('    properties: {hw_x: 1}\n'), 6, /must be a string/],
    [t("    properties: {'a b': x}\n"), 6, /must be 1 to 255 of/],
    [t('    retention: {keep: 0}\n'), 6, /keep must be a whole number from 1 to 1000/],
    [t('    streams: [db]\n'), 6, /no stream "db" is defined/],
    [t('    encryption: default\n'), 6, /unknown key "encryption"/],
  ];

  it('refuses bad targets with the line and a reason', () => {
    for (const [text, line, pattern] of BAD) {
      let error: unknown;
      try {
        parseConfig(text, PATH);
      } catch (e) {
        error = e;
      }
      assert.ok(
        isFerryError(error, 'FERRY_CONFIG_INVALID') &&
          error.details.line === line &&
          pattern.test(error.message),
        `${JSON.stringify(text)}: ${String((error as Error | undefined)?.message)}`,
      );
    }
  });

  it('refuses an fs-layout stream for AWS targets before anything is rendered', async () => {
    const { buildOptionsOf } = await import('../../src/publish/index.js');
    const config = parseConfig(
      'streams:\n  web:\n    layout: fs\ntargets:\n  a:\n    type: aws\n    regions: [us-east-1]\n  o:\n    type: openstack\n    endpoint: http://x\n',
      PATH,
    );
    const stream = config.streams[0]!;
    assert.throws(
      () => buildOptionsOf(stream, config.targets),
      (e: unknown) => isFerryError(e, 'FERRY_NOT_CAPABLE'),
    );
    assert.deepEqual(
      buildOptionsOf(
        stream,
        config.targets.filter((x) => x.type === 'openstack'),
      ).layout,
      'fs',
    );
  });
});
