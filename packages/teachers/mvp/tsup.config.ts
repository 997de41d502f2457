import { bevzooBuild } from '../../../tsup.config.base';

export default bevzooBuild();
