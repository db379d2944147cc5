/* asnmon dashboard: one AudioContext per page for the FAIL beep. Browsers keep audio
   muted until the page has had a user gesture, so the click that switches sound on
   (or any later click) unlocks it; the choice itself is remembered by the checkbox. */
window.__asnmonAudio = function () {
    try {
        if (!window.__asnmonAc) {
            window.__asnmonAc = new (window.AudioContext || window.webkitAudioContext)();
        }
        const ac = window.__asnmonAc;
        if (ac.state === "suspended") { ac.resume(); }
        return ac;
    } catch (e) { return null; }
};
