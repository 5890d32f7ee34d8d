import { Router } from 'express';
import { allow } from '../http/auth';
import { Sweeper } from './sweeper.service';

export function sweeperRoutes(sweeper: Sweeper): Router {
  const r = Router();
  r.post('/sweeps', allow('admin'), async (_req, res) => {
    res.json(await sweeper.sweep());
  });
  return r;
}
