// Templates are imported as precompiled specs (see scripts/hbs-precompile.mjs).
declare module "*.hbs" {
  const spec: TemplateSpecification;
  export default spec;
}
type TemplateSpecification = import("handlebars").TemplateSpecification;
