// Stand-in for the Workers AI binding, which is a cloud service the tests cannot reach.
// Bound to the Worker as a miniflare wrapped binding: this function receives the binding's own
// env and returns the object the Worker sees as env.AI. Its answers are deterministic.
export default function aiStandIn() {
  return {
    async run(model, inputs) {
      if (inputs.prompt.includes("[ai-fails]")) throw new Error("stand-in AI: model is overloaded");
      if (inputs.prompt.includes("[ai-no-text]")) return { usage: { prompt_tokens: 1 } };
      if (inputs.prompt.includes("[ai-slow]")) await new Promise((resolve) => setTimeout(resolve, 10_000));
      return { response: `[${model}] ${inputs.prompt}` };
    },
  };
}
