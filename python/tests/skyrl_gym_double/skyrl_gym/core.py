class Env:
    def step(self, action):
        raise NotImplementedError

    def init(self, *kwargs):
        raise NotImplementedError

    def close(self):
        pass
