'use strict';
const crypto = require('crypto');
const express = require('express');

const router = express.Router();
const items = new Map();
for (let i = 0; i < 50; i++) items.set(String(i), { id: String(i), name: `item ${i}` });

router.get('/', (req, res) => res.json([...items.values()]));
router.get('/:id', (req, res) => {
  const item = items.get(req.params.id);
  if (!item) return res.status(404).json({ error: 'not found' });
  return res.json(item);
});
router.post('/', (req, res) => {
  const id = crypto.randomUUID();
  const item = { id, name: String((req.body && req.body.name) || 'unnamed') };
  items.set(id, item);
  res.status(201).json(item);
});

module.exports = router;
