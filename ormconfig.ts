/** The DataSource the typeorm CLI uses (`npm run typeorm -- migration:run`). Same options as `pos migrate`. */
import './src/capabilities';
import { makeDataSource } from './src/db/data-source';

export default makeDataSource(process.env.DATABASE_URL ?? 'sqlite:./data/pos.db');
