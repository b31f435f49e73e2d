'use strict';
// Benchmark express app: middleware, a router with a JSON API, static files.
const path = require('path');
const express = require('express');
const compression = require('compression');
const morgan = require('morgan');
const items = require('./routes/items');

const PORT = Number(process.env.PORT || 18083);
const app = express();
app.disable('x-powered-by');
app.use(morgan('combined'));
app.use(compression());
app.use(express.json({ limit: '100kb' }));
app.use(express.static(path.join(__dirname, 'public'), { maxAge: '1h' }));
app.use('/api/items', items);
app.get('/healthz', (req, res) => res.type('text').send('ok\n'));
app.use((err, req, res, next) => { // eslint-disable-line no-unused-vars
  res.status(500).json({ error: err.message });
});

const server = app.listen(PORT, '127.0.0.1', () => {
  console.log(`express app listening on :${PORT}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
