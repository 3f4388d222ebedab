export declare const HBS_OPTIONS: { noEscape: boolean; strict: boolean };
export declare function precompileHbs(source: string): string;
