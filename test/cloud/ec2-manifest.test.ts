import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DescribeImagesCommand, RegisterImageCommand } from '@aws-sdk/client-ec2';
import { isAwsError, parseManifest } from '../../src/cloud/index.js';
import { withCloud } from '../helpers/cloud.js';
import { ec2, ec2Code } from '../helpers/ec2.js';

const HEX = 'ab'.repeat(64);

function manifest(
  options: {
    parts?: number;
    count?: number;
    size?: string;
    arch?: string;
    filename?: string;
    extra?: string;
    omit?: string;
  } = {},
): string {
  const n = options.parts ?? 2;
  const parts = Array.from(
    { length: n },
    (_, i) =>
      `<part index="${i}"><filename>${i === 0 && options.filename !== undefined ? options.filename : `image.part.0${i}`}</filename><digest algorithm="SHA1">${'1'.repeat(40)}</digest></part>`,
  ).join('');
  const keys = ['ec2_encrypted_key', 'user_encrypted_key', 'ec2_encrypted_iv', 'user_encrypted_iv']
    .filter((k) => k !== options.omit)
    .map((k) => `<${k} algorithm="AES-128-CBC">${HEX}</${k}>`)
    .join('');
  return `<?xml version="1.0"?>${options.extra ?? ''}<manifest><version>2007-10-10</version><bundler><name>euca-tools</name><version>3.4</version><release>0</release></bundler><machine_configuration><architecture>${options.arch ?? 'x86_64'}</architecture><kernel_id>aki-0123abcd</kernel_id></machine_configuration><image><name>image</name><user>000000000000</user><type>machine</type><digest algorithm="SHA1">${'2'.repeat(40)}</digest><size>${options.size ?? '1073741824'}</size><bundled_size>20971520</bundled_size>${keys}<parts count="${options.count ?? n}">${parts}</parts></image><signature>00</signature></manifest>`;
}

describe('cloud: EC2 instance-store images from bundle manifests', () => {
  it('parses a bundle manifest, refusing what is out of bounds', () => {
    const m = parseManifest(Buffer.from(manifest()));
    assert.equal(m.imageSize, 1073741824);
    assert.equal(m.parts.length, 2);
    assert.equal(m.parts[1]?.filename, 'image.part.01');
    assert.equal(m.architecture, 'x86_64');
    assert.equal(m.kernelId, 'aki-0123abcd');
    const refused: Array<[string, string]> = [
      [manifest({ count: 3 }), 'parts count'],
      [manifest({ parts: 0, count: 0 }), 'parts count'],
      [manifest({ size: String(11 * 2 ** 30) }), 'image size'],
      [manifest({ size: '-1' }), 'image size'],
      [manifest({ arch: 'sparc' }), 'architecture'],
      [manifest({ filename: '../../etc/passwd' }), 'file name'],
      [manifest({ omit: 'user_encrypted_iv' }), 'user_encrypted_iv'],
      [manifest({ extra: '<!DOCTYPE m [<!ENTITY a "aaaa">]>' }), 'DOCTYPE'],
      ['<manifest><version>2007-10-10', 'well-formed'],
      ['<other/>', '<manifest>'],
      ['x'.repeat(1024 * 1024 + 1), 'bytes'],
    ];
    for (const [text, words] of refused) {
      assert.throws(
        () => parseManifest(Buffer.from(text)),
        (e: unknown) => isAwsError(e) && e.code === 'InvalidManifest' && e.message.includes(words),
        words,
      );
    }
  });

  it("RegisterImage with ImageLocation reads the manifest through the endpoint's reader", async () => {
    const files = new Map([
      ['bundles/web/image.manifest.xml', manifest()],
      ['bundles/bad/image.manifest.xml', manifest({ count: 5 })],
    ]);
    const asked: string[] = [];
    await withCloud(
      async ({ url }) => {
        const client = ec2(url);
        const r = await client.send(
          new RegisterImageCommand({
            Name: 'bundled',
            ImageLocation: 'bundles/web/image.manifest.xml',
            VirtualizationType: 'paravirtual',
          }),
        );
        const img = (await client.send(new DescribeImagesCommand({ ImageIds: [r.ImageId!] })))
          .Images![0]!;
        assert.equal(img.RootDeviceType, 'instance-store');
        assert.equal(img.ImageLocation, 'bundles/web/image.manifest.xml');
        assert.equal(img.Architecture, 'x86_64');
        assert.equal(img.KernelId, 'aki-0123abcd');
        assert.deepEqual(asked, ['000000000000 bundles web/image.manifest.xml']);
        await assert.rejects(
          client.send(
            new RegisterImageCommand({
              Name: 'bad',
              ImageLocation: 'bundles/bad/image.manifest.xml',
            }),
          ),
          ec2Code('InvalidManifest'),
        );
        await assert.rejects(
          client.send(
            new RegisterImageCommand({
              Name: 'missing',
              ImageLocation: 'bundles/none/image.manifest.xml',
            }),
          ),
          ec2Code('InvalidManifest'),
        );
        await assert.rejects(
          client.send(
            new RegisterImageCommand({
              Name: 'mixed',
              ImageLocation: 'bundles/web/image.manifest.xml',
              BlockDeviceMappings: [
                { DeviceName: '/dev/sda1', Ebs: { SnapshotId: 'snap-0123456789abcdef0' } },
              ],
            }),
          ),
          ec2Code('InvalidParameterCombination'),
        );
      },
      {
        extra: {
          readManifest: async (account, bucket, key) => {
            asked.push(`${account} ${bucket} ${key}`);
            const text = files.get(`${bucket}/${key}`);
            return text === undefined ? undefined : Buffer.from(text);
          },
        },
      },
    );
  });
});
