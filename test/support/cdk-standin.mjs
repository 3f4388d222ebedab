// A stand-in for the few pieces of aws-cdk-lib the README's CDK example uses
// (App, Stack, aws-ec2's CfnLaunchTemplate), so the example runs without
// aws-cdk-lib's 160 MB. It records each CfnLaunchTemplate's props and
// synthesizes them the way CDK's L1 constructs do: one resource of type
// AWS::EC2::LaunchTemplate whose properties are the props with their keys in
// CloudFormation's PascalCase, values unchanged. App.synth() writes
// <stack>.template.json into $CDK_STANDIN_OUT.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const pascal = (value) => {
  if (Array.isArray(value)) return value.map(pascal);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.charAt(0).toUpperCase() + k.slice(1), pascal(v)]));
};

export class App {
  stacks = [];
  synth() {
    for (const stack of this.stacks) {
      writeFileSync(join(process.env.CDK_STANDIN_OUT, `${stack.id}.template.json`), JSON.stringify({ Resources: stack.resources }, null, 1));
    }
  }
}

export class Stack {
  resources = {};
  constructor(app, id) {
    this.id = id;
    app.stacks.push(this);
  }
}

export class CfnLaunchTemplate {
  constructor(stack, id, props) {
    stack.resources[id] = { Type: "AWS::EC2::LaunchTemplate", Properties: pascal(props) };
  }
}
