import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { openImage } from '../../src/disk/index.js';
import { openExt } from '../../src/inspect/fs/ext/index.js';
import { FsTree } from '../../src/inspect/fs/fs-tree.js';
import { ext4AclToVfs, xfsAclToVfs } from '../../src/inspect/fs/posix-acl.js';
import { XATTR_LIMITS } from '../../src/inspect/fs/xattr-list.js';
import { openXfs } from '../../src/inspect/fs/xfs/index.js';
import { volumeOf } from '../../src/inspect/volume.js';
import { MANIFEST_LIMITS } from '../../src/store/manifest.js';
import { debugfs } from '../corpus/ext.js';
import {
  ACCESS_ACL,
  extXattrImage,
  haveXattrTools,
  vfsAcl,
  type XattrFixture,
  xfsDiskAcl,
  xfsXattrImage,
} from '../corpus/xattr-images.js';
import { withTempDir } from '../helpers/qemu.js';

/** Reads every path's attributes through FsTree and compares them with what the tools stored. */
async function assertFixture(tree: FsTree, fx: XattrFixture): Promise<void> {
  for (const path of fx.paths) {
    const got = await tree.readXattrs(path);
    assert.ok(got !== null, `${path} is missing`);
    const want = fx.expect.get(path) ?? {};
    assert.deepEqual(
      got.map((x) => x.name),
      Object.keys(want).sort(),
      `attribute names of ${path}`,
    );
    for (const x of got) assert.deepEqual(x.value, want[x.name], `${path} ${x.name}`);
  }
}

describe('extended attributes from filesystem images', () => {
  it('caps attributes as the store does', () => {
    assert.equal(XATTR_LIMITS.maxCount, MANIFEST_LIMITS.maxXattrs);
    assert.equal(XATTR_LIMITS.maxValueBytes, MANIFEST_LIMITS.maxXattrBytes);
  });

  it('converts ext4 and XFS ACLs to the form getxattr returns', () => {
    const fail = (r: string) => new Error(r);
    // ext4: version 1, 4-byte entries without an id, 8-byte ones for named users and groups.
    const ext4 = Buffer.from(
      [
        '01000000',
        '01000600',
        '02000400e8030000',
        '04000400',
        '08000500d0070000',
        '10000700',
        '20000100',
      ].join(''),
      'hex',
    );
    assert.deepEqual(ext4AclToVfs(ext4, fail), vfsAcl(ACCESS_ACL));
    assert.equal(ext4AclToVfs(Buffer.from('01000000', 'hex'), fail), null, 'an empty ACL is none');
    assert.throws(() => ext4AclToVfs(Buffer.from('02000000', 'hex'), fail), /version 2/);
    assert.throws(
      () => ext4AclToVfs(Buffer.from('0100000002000400e803', 'hex'), fail),
      /truncated/,
    );
    assert.throws(() => ext4AclToVfs(Buffer.from('0100000040000400', 'hex'), fail), /unknown tag/);
    assert.deepEqual(xfsAclToVfs(xfsDiskAcl(ACCESS_ACL), 25, fail), vfsAcl(ACCESS_ACL));
    const short = xfsDiskAcl(ACCESS_ACL).subarray(0, 40);
    assert.throws(() => xfsAclToVfs(short, 25, fail), /6 entries is 40 bytes/);
    assert.throws(() => xfsAclToVfs(xfsDiskAcl(ACCESS_ACL), 5, fail), /claims 6 entries/);
  });

  it('reads in-inode, block and ea_inode attributes and ACLs that debugfs set on ext4', {
    skip: haveXattrTools.ext ? false : 'e2fsprogs not installed',
  }, async () => {
    await withTempDir(async (dir) => {
      const fx = await extXattrImage(dir);
      // The image really uses each place: /f has an attribute block and an ea_inode exists.
      assert.match(debugfs(fx.img, 'stat /f'), /File ACL: [1-9]\d*/);
      const eaInodes = Array.from({ length: 20 }, (_, i) => 11 + i).filter((n) => {
        const flags = /Flags: 0x([0-9a-f]+)/.exec(debugfs(fx.img, `stat <${n}>`))?.[1];
        return flags !== undefined && (Number.parseInt(flags, 16) & 0x200000) !== 0;
      });
      assert.equal(eaInodes.length, 1, 'debugfs put the 4 KiB value in an ea_inode');
      // debugfs stored the ACL in ext4's own form (version 1), not the VFS form it was given.
      assert.match(
        debugfs(fx.img, 'ea_get -r /d system.posix_acl_access'),
        /01 00 00 00 01 00 06 00/,
      );
      const image = await openImage(fx.img);
      try {
        const driver = await openExt(volumeOf(image, 0, image.virtualSize));
        assert.ok(driver !== null);
        const tree = new FsTree(driver);
        await assertFixture(tree, fx);
        // Following the symlink reads the target's attributes instead.
        assert.deepEqual(
          (await tree.readXattrs('/l', true))?.map((x) => x.name),
          Object.keys(fx.expect.get('/f')!).sort(),
        );
        assert.equal(await tree.readXattrs('/missing'), null);
      } finally {
        await image.close();
      }
    });
  });

  for (const v4 of [false, true]) {
    it(`reads short-form, leaf, node and remote attributes and ACLs that xfs_db set on XFS ${v4 ? 'v4' : 'v5'}`, {
      skip: haveXattrTools.xfs ? false : 'xfsprogs not installed',
    }, async () => {
      await withTempDir(async (dir) => {
        const fx = await xfsXattrImage(dir, v4);
        // xfs_db agrees on the fork formats the test means to cover.
        const format = (p: string) =>
          /core.aformat = (\d)/.exec(
            execFileSync('xfs_db', ['-c', `path ${p}`, '-c', 'p core.aformat', fx.img], {
              stdio: ['ignore', 'pipe', 'ignore'],
            }).toString(),
          )?.[1];
        assert.equal(format('/sf'), '1');
        assert.equal(format('/leaf'), '2');
        assert.equal(format('/node'), '2');
        const nodeRoot = execFileSync(
          'xfs_db',
          ['-c', 'path /node', '-c', 'ablock 0', '-c', 'p hdr', fx.img],
          { stdio: ['ignore', 'pipe', 'ignore'] },
        ).toString();
        assert.match(
          nodeRoot,
          v4 ? /magic = 0xfebe/ : /magic = 0x3ebe/,
          'a dabtree node at block 0',
        );
        const image = await openImage(fx.img);
        try {
          const driver = await openXfs(volumeOf(image, 0, image.virtualSize));
          assert.ok(driver !== null);
          assert.equal(driver.sb.v5, !v4);
          await assertFixture(new FsTree(driver), fx);
        } finally {
          await image.close();
        }
      });
    });
  }
});
