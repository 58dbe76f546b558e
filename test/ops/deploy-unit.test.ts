import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import t from 'tap'

// deploy/textdesk.service is an example unit: systemd cannot run here, but it can check the file
// the way it would load it (unknown keys, a missing executable, bad values).
const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p))

t.test('the systemd unit in deploy/ loads without a warning', { skip: analyze === undefined ? 'systemd-analyze is not installed (Debian package systemd)' : false }, async (t) => {
  const run = spawnSync(analyze as string, ['verify', 'deploy/textdesk.service'], { encoding: 'utf8' })
  t.equal(run.status, 0, 'systemd-analyze verify accepts it')
  t.equal(`${run.stdout}${run.stderr}`.trim(), '', 'and says nothing about it')
})
