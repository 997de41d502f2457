/**
 * A CenterPoint teacher problem: a config whose parts do not fit together (`field`), or a batch that lacks what the
 * model reads. Says what was expected, what was found, and where. Defined in @bevzoo/nn beside the detector (MVP's
 * teacher throws it too).
 */
export { CenterPointError } from '@bevzoo/nn';
