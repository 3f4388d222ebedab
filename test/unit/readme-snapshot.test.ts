import { expect, it } from "vitest";
import { loadConfig, renderBundle } from "dockinit";

it("the seed host's cloud-config", async () => {
  const { bundle } = renderBundle(loadConfig("test/fixtures/seed/dockinit.yaml"));
  await expect(bundle!.cloudConfig).toMatchFileSnapshot("__snapshots__/seed-cloud-config.yaml");
});
