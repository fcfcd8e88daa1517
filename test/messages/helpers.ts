// The helpers moved to test/helpers/. This stays only while
// test/messages/consume-path.test.ts (being written alongside) imports it:
// once that imports build and injectClient from '../helpers/app.js', delete it.
export { build, injectClient as connect } from '../helpers/app.js'
