// Logs far more than the gateway lets a widget log: a burst at once, then one line two
// seconds later (surely in a fresh second), which carries the count of what was dropped.
module.exports = (r) => {
    r.register('burst', 'GET', (req, res) => {
        for (let i = 0; i < 20000; i += 1) console.log(`chatty line ${i}`);
        setTimeout(() => console.log('chatty after the burst'), 2100);
        res.send('logged');
    });
};
