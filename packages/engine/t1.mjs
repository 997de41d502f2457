import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as w from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'module';
import path from 'path';
const req = createRequire(import.meta.url);
const dir = path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/';
w.setWasmPaths(dir);
console.log(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'), await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
await tf.setBackend('wasm'); await tf.ready();
console.log(tf.getBackend(), w.getThreadsCount());
const x = tf.randomNormal([2,64,64,32]); const f1 = tf.randomNormal([3,3,32,64]); const f2 = tf.randomNormal([3,3,64,64]);
for (let i=0;i<5;i++){ let t=performance.now(); const y=tf.conv2d(x,f1,1,'same'); y.dataSync(); const t1=performance.now(); const z=tf.conv2d(y,f2,1,'same'); z.dataSync(); console.log('conv1',(t1-t).toFixed(1),'conv2',(performance.now()-t1).toFixed(1)); y.dispose(); z.dispose(); }
// matmul fast path
const A = tf.randomNormal([576, 8192]); const B = tf.randomNormal([8192, 64]);
for (let i=0;i<3;i++){ let t=performance.now(); const c=tf.matMul(A,B); c.dataSync(); console.log('mm 576x8192x64', (performance.now()-t).toFixed(1)); c.dispose();}
const B2 = tf.randomNormal([8192, 576]); const A2 = tf.randomNormal([64, 8192]);
for (let i=0;i<3;i++){ let t=performance.now(); const c=tf.matMul(A2,B2); c.dataSync(); console.log('mm 64x8192x576', (performance.now()-t).toFixed(1)); c.dispose();}
const A3 = tf.randomNormal([8192, 576]); const B3 = tf.randomNormal([576, 64]);
for (let i=0;i<3;i++){ let t=performance.now(); const c=tf.matMul(A3,B3); c.dataSync(); console.log('mm 8192x576x64', (performance.now()-t).toFixed(1)); c.dispose();}
for (let i=0;i<2;i++){ let t=performance.now(); const c=tf.matMul(A3,B,true,false); c.dataSync(); console.log('mm slow transA', (performance.now()-t).toFixed(1)); c.dispose();}
for (let i=0;i<3;i++){ let t=performance.now(); const c=tf.transpose(A3); c.dataSync(); console.log('transpose 8192x576', (performance.now()-t).toFixed(1)); c.dispose();}
const dy = tf.randomNormal([2,64,64,64]);
for (let i=0;i<2;i++){ let t=performance.now(); const c=tf.conv2dTranspose(dy,f2,[2,64,64,64],1,'same'); c.dataSync(); console.log('stock bpInput', (performance.now()-t).toFixed(1)); c.dispose();}
