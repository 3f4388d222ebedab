import { expect, it } from "vitest";
import { loadDefaultConfig, renderBundle } from "dockinit";

it("the host's cloud-config", async () => {
  const { bundle } = renderBundle(loadDefaultConfig()); // yours: loadConfig("dockinit.yaml")
  await expect(bundle!.cloudConfig).toMatchFileSnapshot("__snapshots__/default-cloud-config.yaml");
});
