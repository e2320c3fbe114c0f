/** Which AWS resource types take tags: the policy pack's reading of the provider SDK, shared with the specs. */
export { isTaggable } from "../../policy/taggable";
