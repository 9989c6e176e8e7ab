/**
 * The lab's generated daemon configurations pass the daemons' whole loader, cross-field checks
 * included (what `--validate`, start and reload run), in every mode: a lab run never fails on a
 * configuration the loader could have refused up front.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { loadConfig } from '../../../shared/src/config/load-config.ts'
import { ConfigSchema as CpeSchema } from '../../../cpe/src/config/config.ts'
import { cpeConfigProblems } from '../../../cpe/src/config/check.ts'
import { ConfigSchema as ConcSchema } from '../../../concentrator/src/config/config.ts'
import { concentratorConfigProblems } from '../../../concentrator/src/config/check.ts'
import { DAEMON_MODES, labCpeConfig, labModeConcentratorConfig } from '../../../lab/lab-daemons-config.ts'
import { ADDRESS_PLAN } from '../../../lab/addresses.ts'
import { instancePlan, MAX_INSTANCES } from '../../../lab/scale-out-plan.ts'
import { instanceConcentratorConfig, SCALE_OUT_MODES, scaleOutCpeConfig } from '../../../lab/scale-out.ts'
import { testTempDir } from '../../helpers/temp-dir.ts'

const dir = testTempDir('hat-lab-check-')
const write = (name: string, doc: Record<string, unknown>): string => {
  const file = join(dir, name)
  writeFileSync(file, stringify(doc))
  return file
}

for (const mode of DAEMON_MODES) {
  test(`lab ${mode}: CPE and concentrator configurations pass the loader with the cross-field checks`, () => {
    const cpe = loadConfig(CpeSchema, { file: write(`cpe-${mode}.yaml`, labCpeConfig(mode)), check: cpeConfigProblems })
    assert.equal(cpe.mode, mode)
    const conc = loadConfig(ConcSchema, { file: write(`conc-${mode}.yaml`, labModeConcentratorConfig(mode)), check: concentratorConfigProblems })
    assert.ok(conc.listeners.length > 0)
  })
}

test('scale-out lab: every instance\'s concentrator configuration and the fullmesh CPE pass the loader with the cross-field checks', () => {
  for (let id = 1; id <= MAX_INSTANCES; id++) {
    const conc = loadConfig(ConcSchema, { file: write(`conc-hag${id}.yaml`, instanceConcentratorConfig(instancePlan(id), ADDRESS_PLAN)), check: concentratorConfigProblems })
    assert.equal(conc.join.endpoints[0]?.address, instancePlan(id).address)
    const t = loadConfig(ConcSchema, {
      file: write(`conc-t-hag${id}.yaml`, instanceConcentratorConfig(instancePlan(id), ADDRESS_PLAN, 'transparent')),
      check: concentratorConfigProblems
    })
    assert.deepEqual(t.transparent.accessInterfaces, ['lb0'])
  }
  for (const mode of SCALE_OUT_MODES) {
    const cpe = loadConfig(CpeSchema, { file: write(`cpe-scale-out-${mode}.yaml`, scaleOutCpeConfig(mode, ADDRESS_PLAN)), check: cpeConfigProblems })
    assert.equal(cpe.multipath.fullmesh, true)
  }
})
